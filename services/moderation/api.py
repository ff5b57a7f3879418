"""HTTP: rulesets, the audit log of decisions with appeals, the blacklist and member dedupe."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field, ValidationError

from services.moderation.detect.ruleset import Ruleset
from services.moderation.operations import Operations
from services.moderation.rulesets import Rulesets
from services.runtime.http import Admin, IdInPath, Operator, Viewer, provided
from services.runtime.openapi import answers
from services.runtime.overrides import merged
from services.runtime.refusals import NotFound, invalid


class AppealIn(BaseModel):
    reason: str = Field(max_length=2000, description="why the decision was wrong")


class BlacklistIn(BaseModel):
    reason: str = Field("", max_length=2000, description="shown in the audit log")


class DedupeIn(BaseModel):
    series: str = Field(description="the series tag")


RulesetStore = Annotated[Rulesets, Depends(provided(Rulesets))]
Ops = Annotated[Operations, Depends(provided(Operations))]
router = APIRouter(prefix="/v1")


@router.get("/rulesets/default", tags=["rulesets"])
async def get_ruleset(principal: Viewer, rulesets: RulesetStore) -> dict[str, Any]:
    """The tenant's ruleset (the zh-CN defaults until it is set)."""
    return (await rulesets.tenant(principal.tenant_id)).model_dump()


@router.put("/rulesets/default", tags=["rulesets"])
async def put_ruleset(principal: Admin, ruleset: Ruleset, rulesets: RulesetStore) -> dict[str, Any]:
    """Replace the tenant's ruleset; fields left out take their defaults."""
    await rulesets.put_tenant(principal.tenant_id, ruleset)
    return ruleset.model_dump()


@router.get("/rulesets/groups/{group_id}", tags=["rulesets"])
async def get_group_ruleset(
    group_id: IdInPath, principal: Viewer, rulesets: RulesetStore
) -> dict[str, Any]:
    """A group's override and the ruleset in effect there."""
    override = await rulesets.override(principal.tenant_id, group_id)
    effective = merged(await rulesets.tenant(principal.tenant_id), override)
    return {
        "group_id": group_id,
        "override": override or {},
        "effective": effective.model_dump(),
    }


@router.put("/rulesets/groups/{group_id}", tags=["rulesets"])
async def put_group_ruleset(
    group_id: IdInPath,
    principal: Admin,
    rulesets: RulesetStore,
    body: Annotated[dict[str, Any], Body(description="any fields of a ruleset")],
) -> dict[str, Any]:
    """Set a group's override: any ruleset fields, merged over the tenant's."""
    try:
        effective = merged(await rulesets.tenant(principal.tenant_id), body)
    except ValidationError as exc:
        raise invalid(exc.errors()) from None
    await rulesets.put_group(principal.tenant_id, group_id, body)
    return {"group_id": group_id, "override": body, "effective": effective.model_dump()}


@router.delete("/rulesets/groups/{group_id}", tags=["rulesets"], status_code=204)
async def delete_group_ruleset(
    group_id: IdInPath, principal: Admin, rulesets: RulesetStore
) -> None:
    """Remove a group's override."""
    if not await rulesets.delete_group(principal.tenant_id, group_id):
        raise NotFound("this group has no override")


@router.get("/moderation/decisions", tags=["moderation"])
async def audit_log(
    principal: Viewer,
    ops: Ops,
    group_id: str | None = None,
    member_id: str | None = None,
    rule: str | None = None,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The audit log: every decision with its rule, evidence and every check's answer."""
    found = await ops.list_decisions(
        principal.tenant_id, group_id, member_id, rule, start, end, limit
    )
    return {"decisions": found}


@router.post("/moderation/decisions/{decision_id}/appeal", tags=["moderation"])
async def appeal(decision_id: str, principal: Operator, body: AppealIn, ops: Ops) -> dict[str, Any]:
    """Appeal a decision (with a `reason`); operators see appeals in the audit log."""
    return await ops.appeal(principal, decision_id, body.reason)


@router.get("/blacklist", tags=["blacklist"])
async def list_blacklist(principal: Viewer, ops: Ops) -> dict[str, Any]:
    """Members who may not join any group of the tenant."""
    return {"members": await ops.blacklist(principal.tenant_id)}


@router.put("/blacklist/{member_id}", tags=["blacklist"])
async def add_to_blacklist(
    member_id: IdInPath, principal: Admin, ops: Ops, body: BlacklistIn | None = None
) -> dict[str, Any]:
    """Blacklist a member by hand (with an optional `reason`)."""
    reason = body.reason if body else ""
    return await ops.add_to_blacklist(principal.tenant_id, member_id, reason)


@router.delete("/blacklist/{member_id}", tags=["blacklist"])
async def unban(member_id: IdInPath, principal: Admin, ops: Ops) -> dict[str, Any]:
    """Unban: the member may join again; the groups the member was removed from are told."""
    return await ops.unban(principal.tenant_id, member_id)


@router.post("/dedupe/plans", tags=["dedupe"], status_code=201)
async def plan_dedupe(principal: Operator, body: DedupeIn, ops: Ops) -> dict[str, Any]:
    """Dry run of member dedupe (群成员去重): members in two or more groups of the series
    keep their oldest membership; the plan lists the removals and changes nothing."""
    return await ops.plan_dedupe(principal, body.series)


@router.get("/dedupe/plans/{plan_id}", tags=["dedupe"])
async def dedupe_plan(plan_id: str, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """A dedupe plan, with what was done once it is applied."""
    return await ops.dedupe_plan(principal.tenant_id, plan_id)


@router.post("/dedupe/plans/{plan_id}/apply", tags=["dedupe"], responses=answers(409))
async def apply_dedupe(plan_id: str, principal: Admin, ops: Ops) -> dict[str, Any]:
    """Apply a plan once, within 24 hours: kicks the members from the extra groups
    (skipping those who have left since); applied or expired plans are 409."""
    return await ops.apply_dedupe(principal, plan_id)
