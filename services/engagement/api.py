"""HTTP (API.md "Engagement"): the settings, per tenant and per group; a member's points and
ledger, and operators' grants. Each route calls its operation (`operations.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field

from services.engagement.autoreply import Rule
from services.engagement.operations import MAX_GRANT, MAX_REASON, Operations
from services.engagement.settings import EngagementSettings
from services.runtime.http import Admin, IdInPath, Viewer, provided
from services.runtime.openapi import answers
from services.runtime.wellformed import KeyPart


class GrantIn(BaseModel):
    grant_id: KeyPart = Field(description="the client's id: the same grant twice changes nothing")
    member_id: KeyPart
    points: int = Field(ge=-MAX_GRANT, le=MAX_GRANT, description="a negative number deducts")
    reason: str = Field("", max_length=MAX_REASON)


Ops = Annotated[Operations, Depends(provided(Operations))]
router = APIRouter(prefix="/v1")
SETTINGS: list[str | Enum] = ["engagement settings"]


@router.get("/engagement/settings", tags=SETTINGS)
async def get_settings(principal: Viewer, ops: Ops) -> dict[str, Any]:
    """The tenant's engagement settings (the defaults until they are set)."""
    return await ops.settings(principal.tenant_id)


@router.put("/engagement/settings", tags=SETTINGS)
async def put_settings(principal: Admin, body: EngagementSettings, ops: Ops) -> dict[str, Any]:
    """Replace the tenant's engagement settings; fields left out take their defaults."""
    return await ops.put_settings(principal.tenant_id, body.model_dump())


@router.get("/engagement/settings/groups/{group_id}", tags=SETTINGS)
async def get_group_settings(group_id: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """A group's override and the settings in effect there."""
    return await ops.settings(principal.tenant_id, group_id)


@router.put("/engagement/settings/groups/{group_id}", tags=SETTINGS)
async def put_group_settings(
    group_id: IdInPath,
    principal: Admin,
    ops: Ops,
    body: Annotated[dict[str, Any], Body(description="any fields of the settings")],
) -> dict[str, Any]:
    """Set a group's override: any fields of the settings, merged over the tenant's."""
    return await ops.put_group_settings(principal.tenant_id, group_id, body)


@router.delete("/engagement/settings/groups/{group_id}", tags=SETTINGS, status_code=204)
async def delete_group_settings(group_id: IdInPath, principal: Admin, ops: Ops) -> None:
    """Remove a group's override: the tenant's settings apply there again."""
    await ops.delete_group_settings(principal.tenant_id, group_id)


@router.get("/engagement/welcome-templates", tags=SETTINGS)
async def welcome_templates(
    principal: Viewer,
    ops: Ops,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[str | None, Query(max_length=400, description="the `next` of a page")] = None,
) -> dict[str, Any]:
    """WeCom's group welcome templates as engagement keeps them in step with the welcome: the
    tenant's (shared by groups whose welcome reads the same) and those of groups with a text
    of their own; each with WeCom's `template_id` for the group owners to choose, and its
    state (`syncing`, `synced`, `failed` with the reason)."""
    return await ops.welcome_templates(principal.tenant_id, limit, after)


def _at(stamp: int) -> str:
    return datetime.fromtimestamp(stamp / 1e6, UTC).isoformat().replace("+00:00", "Z")


@router.get("/members/{member_id}/profile", tags=["members"])
async def member_profile(member_id: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """A member's latest activity in the tenant, orders, spend (CNY) and tier (regular 普通,
    buyer 消费, core 核心)."""
    found = await ops.profile(principal.tenant_id, member_id)
    seen = found["last_seen_at"]
    return {**found, "last_seen_at": _at(seen) if seen is not None else None}


@router.get("/groups/{group_id}/segments", tags=["members"])
async def group_segments(
    group_id: IdInPath,
    principal: Viewer,
    ops: Ops,
    date: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD; today")] = None,
) -> dict[str, Any]:
    """How many of the group's members are KOC (top 10% by messages that start conversations
    or draw replies), interactive (the next 20%) and silent (the rest) on a day."""
    return await ops.segments(principal.tenant_id, group_id, date)


@router.get("/members/{member_id}/points", tags=["points"])
async def member_points(
    member_id: IdInPath,
    principal: Viewer,
    ops: Ops,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(max_length=400, description="the `next` of a page")] = None,
) -> dict[str, Any]:
    """A member's balance and ledger entries, newest first."""
    found = await ops.member_points(principal.tenant_id, member_id, limit, before)
    return {**found, "entries": [{**e, "at": _at(e["at"])} for e in found["entries"]]}


@router.post("/points/grants", tags=["points"], responses=answers(409))
async def grant_points(body: GrantIn, principal: Admin, ops: Ops) -> dict[str, Any]:
    """Give or deduct points by hand; a deduction the balance does not cover is refused."""
    return await ops.grant(
        principal.tenant_id, body.grant_id, body.member_id, body.points, body.reason
    )


AUTOREPLY: list[str | Enum] = ["auto-replies"]


class RuleOut(Rule):
    rule_id: str


class Saved(BaseModel):
    rule_id: str
    overlaps: list[dict[str, Any]] = Field(
        description="other rules a message would trigger too: {rule_id, keywords}"
    )


@router.get("/autoreplies", tags=AUTOREPLY)
async def list_autoreplies(principal: Viewer, ops: Ops) -> dict[str, list[RuleOut]]:
    """The tenant's auto-reply rules (at most 100), in the order they were created."""
    rules = await ops.autoreply_rules(principal.tenant_id)
    return {"rules": [RuleOut.model_validate(r) for r in rules]}


@router.post("/autoreplies", tags=AUTOREPLY, status_code=201, responses=answers(422))
async def create_autoreply(body: Rule, principal: Admin, ops: Ops) -> Saved:
    """Add a rule; the 101st is refused. The answer names the rules it overlaps."""
    return Saved.model_validate(await ops.create_autoreply(principal.tenant_id, body))


@router.get("/autoreplies/{rule_id}", tags=AUTOREPLY, responses=answers(404))
async def get_autoreply(rule_id: IdInPath, principal: Viewer, ops: Ops) -> RuleOut:
    return RuleOut.model_validate(await ops.autoreply_rule(principal.tenant_id, rule_id))


@router.put("/autoreplies/{rule_id}", tags=AUTOREPLY, responses=answers(404, 422))
async def replace_autoreply(rule_id: IdInPath, body: Rule, principal: Admin, ops: Ops) -> Saved:
    """Replace a rule; the answer names the rules it overlaps."""
    return Saved.model_validate(await ops.replace_autoreply(principal.tenant_id, rule_id, body))


@router.delete("/autoreplies/{rule_id}", tags=AUTOREPLY, status_code=204, responses=answers(404))
async def delete_autoreply(rule_id: IdInPath, principal: Admin, ops: Ops) -> None:
    await ops.delete_autoreply(principal.tenant_id, rule_id)
