"""HTTP: points (API.md "Engagement"): a member's balance and ledger, and operators' grants."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from services.engagement.points import Grant, Points
from services.runtime.http import Admin, IdInPath, Viewer, provided
from services.runtime.openapi import answers
from services.runtime.refusals import Conflict, Invalid
from services.runtime.wellformed import KeyPart

MAX_GRANT = 1_000_000


class GrantIn(BaseModel):
    grant_id: KeyPart = Field(description="the client's id: the same grant twice changes nothing")
    member_id: KeyPart
    points: int = Field(ge=-MAX_GRANT, le=MAX_GRANT, description="a negative number deducts")
    reason: str = Field("", max_length=200)


Ledger = Annotated[Points, Depends(provided(Points))]
router = APIRouter(prefix="/v1", tags=["points"])


def _at(stamp: int) -> str:
    return datetime.fromtimestamp(stamp / 1e6, UTC).isoformat().replace("+00:00", "Z")


@router.get("/members/{member_id}/points")
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


@router.post("/points/grants", responses=answers(409))
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
