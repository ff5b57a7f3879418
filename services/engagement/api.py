"""HTTP (API.md "Engagement"): the settings, per tenant and per group; a member's points and
ledger, and operators' grants."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field, ValidationError

from services.engagement.points import Grant, Points
from services.engagement.settings import EngagementSettings, TenantSettings
from services.runtime.http import Admin, IdInPath, Viewer, provided
from services.runtime.openapi import answers
from services.runtime.overrides import merged
from services.runtime.refusals import Conflict, Invalid, NotFound, invalid
from services.runtime.wellformed import KeyPart

MAX_GRANT = 1_000_000


class GrantIn(BaseModel):
    grant_id: KeyPart = Field(description="the client's id: the same grant twice changes nothing")
    member_id: KeyPart
    points: int = Field(ge=-MAX_GRANT, le=MAX_GRANT, description="a negative number deducts")
    reason: str = Field("", max_length=200)


Ledger = Annotated[Points, Depends(provided(Points))]
Configured = Annotated[TenantSettings, Depends(provided(TenantSettings))]
router = APIRouter(prefix="/v1")


@router.get("/engagement/settings", tags=["engagement settings"])
async def get_settings(principal: Viewer, configured: Configured) -> dict[str, Any]:
    """The tenant's engagement settings (the defaults until they are set)."""
    return (await configured.tenant(principal.tenant_id)).model_dump()


@router.put("/engagement/settings", tags=["engagement settings"])
async def put_settings(
    principal: Admin, body: EngagementSettings, configured: Configured
) -> dict[str, Any]:
    """Replace the tenant's engagement settings; fields left out take their defaults."""
    await configured.put_tenant(principal.tenant_id, body)
    return body.model_dump()


async def _group(configured: TenantSettings, tenant_id: str, group_id: str) -> dict[str, Any]:
    override = await configured.override(tenant_id, group_id)
    effective = merged(await configured.tenant(tenant_id), override)
    return {"group_id": group_id, "override": override or {}, "effective": effective.model_dump()}


@router.get("/engagement/settings/groups/{group_id}", tags=["engagement settings"])
async def get_group_settings(
    group_id: IdInPath, principal: Viewer, configured: Configured
) -> dict[str, Any]:
    """A group's override and the settings in effect there."""
    return await _group(configured, principal.tenant_id, group_id)


@router.put("/engagement/settings/groups/{group_id}", tags=["engagement settings"])
async def put_group_settings(
    group_id: IdInPath,
    principal: Admin,
    configured: Configured,
    body: Annotated[dict[str, Any], Body(description="any fields of the settings")],
) -> dict[str, Any]:
    """Set a group's override: any fields of the settings, merged over the tenant's."""
    try:
        merged(await configured.tenant(principal.tenant_id), body)
    except ValidationError as exc:
        raise invalid(exc.errors()) from None
    await configured.put_group(principal.tenant_id, group_id, body)
    return await _group(configured, principal.tenant_id, group_id)


@router.delete(
    "/engagement/settings/groups/{group_id}", tags=["engagement settings"], status_code=204
)
async def delete_group_settings(
    group_id: IdInPath, principal: Admin, configured: Configured
) -> None:
    """Remove a group's override: the tenant's settings apply there again."""
    if not await configured.delete_group(principal.tenant_id, group_id):
        raise NotFound("this group has no override")


def _at(stamp: int) -> str:
    return datetime.fromtimestamp(stamp / 1e6, UTC).isoformat().replace("+00:00", "Z")


@router.get("/members/{member_id}/points", tags=["points"])
async def member_points(
    member_id: IdInPath,
    principal: Viewer,
    points: Ledger,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(max_length=400, description="the `next` of a page")] = None,
) -> dict[str, Any]:
    """A member's balance and ledger entries, newest first."""
    entries, more = await points.entries(principal.tenant_id, member_id, limit, before)
    return {
        "member_id": member_id,
        "balance": await points.balance(principal.tenant_id, member_id),
        "entries": [{**e, "at": _at(e["at"])} for e in entries],
        "next": more,
    }


@router.post("/points/grants", tags=["points"], responses=answers(409))
async def grant_points(body: GrantIn, principal: Admin, points: Ledger) -> dict[str, Any]:
    """Give or deduct points by hand; a deduction the balance does not cover is refused."""
    if body.points == 0:
        raise Invalid("points", "must not be 0")
    grant = Grant(
        principal.tenant_id,
        body.member_id,
        f"grant:{body.grant_id}",
        body.points,
        body.reason,
        datetime.now(UTC),
    )
    [result] = await points.apply([grant])
    earlier = result.entry
    if earlier and (earlier["member_id"], earlier["points"]) != (body.member_id, body.points):
        raise Conflict("grant_id: already used for another grant")
    if not result.booked:
        raise Conflict("insufficient_points")
    return {"grant_id": body.grant_id, "member_id": body.member_id, "balance": result.balance}
