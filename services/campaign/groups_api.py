"""HTTP (API.md "Campaign"): short-term activity groups, group handovers, group notices per
series tag and the tier ladder. Each route calls its operation (`group_operations.py`)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.campaign.activity import ActivityGroup
from services.campaign.group_operations import GroupOperations
from services.campaign.handover import Handover
from services.campaign.ladder import Ladder
from services.campaign.notice import Notice
from services.runtime.http import (
    Admin,
    IdInPath,
    Operator,
    PageAfter,
    PageLimit,
    Viewer,
    provided,
)
from services.runtime.openapi import answers

Ops = Annotated[GroupOperations, Depends(provided(GroupOperations))]
router = APIRouter(prefix="/v1")
ACTIVITY: list[str | Enum] = ["activity groups"]
HANDOVER: list[str | Enum] = ["handovers"]
NOTICES: list[str | Enum] = ["group notices"]
TIERS: list[str | Enum] = ["tier ladder"]


@router.put("/activity-groups/{group_id}", tags=ACTIVITY, responses=answers(404, 422))
async def set_activity(
    group_id: IdInPath, body: ActivityGroup, principal: Operator, ops: Ops
) -> dict[str, Any]:
    """A short-term activity group: a wrap-up message on its end day, and `dismiss_after_days`
    later a farewell and the group dismissed. Set again, its steps start over."""
    return await ops.set_activity(principal.tenant_id, group_id, body)


@router.get("/activity-groups/{group_id}", tags=ACTIVITY, responses=answers(404))
async def get_activity(group_id: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """The activity, its steps (when, done) and their deliveries' outcomes."""
    return await ops.activity(principal.tenant_id, group_id)


@router.delete(
    "/activity-groups/{group_id}", tags=ACTIVITY, status_code=204, responses=answers(404)
)
async def end_activity(group_id: IdInPath, principal: Operator, ops: Ops) -> None:
    """The group is an activity group no more: no step left is taken."""
    await ops.end_activity(principal.tenant_id, group_id)


@router.get("/activity-groups", tags=ACTIVITY)
async def activities(
    principal: Viewer, ops: Ops, limit: PageLimit = 100, after: PageAfter = None
) -> dict[str, Any]:
    return await ops.activities_page(principal.tenant_id, limit, after)


@router.post("/handovers", tags=HANDOVER, status_code=201, responses=answers(404, 422))
async def start_handover(body: Handover, principal: Admin, ops: Ops) -> dict[str, Any]:
    """A leaver's groups (or those named) pass to a colleague: on WeCom 100 a call and 300 of
    the leaver's a day, groups WeCom refuses tried again; elsewhere by changing the owner where
    the platform allows. The same `handover_id` again answers the first."""
    return await ops.start_handover(principal.tenant_id, body)


@router.get("/handovers", tags=HANDOVER)
async def handovers(
    principal: Viewer, ops: Ops, limit: PageLimit = 100, after: PageAfter = None
) -> dict[str, Any]:
    """The tenant's handovers, with their counts."""
    return await ops.handovers_page(principal.tenant_id, limit, after)


@router.get("/handovers/{handover_id}", tags=HANDOVER, responses=answers(404))
async def get_handover(handover_id: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """Each group's progress (pending, sending, transferred, failed with why), the batches,
    and when the next may go."""
    return await ops.handover(principal.tenant_id, handover_id)


@router.put("/notices/{tag}", tags=NOTICES, responses=answers(422))
async def put_notice(tag: IdInPath, body: Notice, principal: Operator, ops: Ops) -> Any:
    """The notice the series' groups should show; the owners of groups that differ are
    reminded (once per difference)."""
    return await ops.put_notice(principal.tenant_id, tag, body)


@router.get("/notices/{tag}", tags=NOTICES, responses=answers(404))
async def get_notice(tag: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    return await ops.notice(principal.tenant_id, tag)


@router.get("/notice-drift", tags=NOTICES)
async def notice_drift(
    principal: Viewer, ops: Ops, limit: PageLimit = 100, after: PageAfter = None
) -> dict[str, Any]:
    """Active groups whose notice differs from their series' (`reported` null: never
    reported by the platform)."""
    return await ops.drift(principal.tenant_id, limit, after)


@router.put("/tiers", tags=TIERS, responses=answers(404, 422))
async def put_ladder(body: Ladder, principal: Admin, ops: Ops) -> dict[str, Any]:
    """The series in tiers, lowest first: a member whose tier (engagement's, from orders)
    rises to a rung's is invited to its live code, once."""
    return await ops.put_ladder(principal.tenant_id, body)


@router.get("/tiers", tags=TIERS, responses=answers(404))
async def get_ladder(principal: Viewer, ops: Ops) -> dict[str, Any]:
    return await ops.ladder(principal.tenant_id)
