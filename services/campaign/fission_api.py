"""HTTP (API.md "Campaign"): fission tasks (任务宝). Each route calls its operation
(`operations.py`)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from services.campaign.fission import FissionTask
from services.campaign.operations import Operations
from services.runtime.http import IdInPath, Operator, PageAfter, PageLimit, Viewer, provided
from services.runtime.openapi import answers
from services.runtime.wellformed import KeyPart

Ops = Annotated[Operations, Depends(provided(Operations))]
router = APIRouter(prefix="/v1")
FISSION: list[str | Enum] = ["fission tasks"]


class CodeIn(BaseModel):
    member_id: KeyPart
    group_id: KeyPart | None = Field(
        None, description="the group the member asked in: their reward's red packet goes there"
    )


@router.post("/fission/tasks", tags=FISSION, status_code=201, responses=answers(404, 422))
async def create_fission_task(body: FissionTask, principal: Operator, ops: Ops) -> dict[str, Any]:
    """A fission task: each member's personal invite code fills the live code's pool; an
    invitee counts once they have stayed `stay_hours`; the reward once the goal is reached."""
    return await ops.create_fission_task(principal.tenant_id, body)


@router.get("/fission/tasks", tags=FISSION)
async def fission_tasks(
    principal: Viewer, ops: Ops, limit: PageLimit = 100, after: PageAfter = None
) -> dict[str, Any]:
    """The tenant's fission tasks."""
    return await ops.listed(principal.tenant_id, "fission_tasks", limit, after)


@router.get("/fission/tasks/{task_id}", tags=FISSION, responses=answers(404))
async def get_fission_task(task_id: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    return await ops.fission_task(principal.tenant_id, task_id)


@router.post("/fission/tasks/{task_id}/codes", tags=FISSION, responses=answers(404, 409, 422))
async def invite_code(
    task_id: IdInPath, body: CodeIn, principal: Operator, ops: Ops
) -> dict[str, Any]:
    """The member's personal invite code (the same one when asked again), scanned at
    `POST /v1/livecodes/{code}/scan`; 409 `ended`, or `blacklisted` for a blacklisted member."""
    return await ops.invite_code(principal.tenant_id, task_id, body.member_id, body.group_id)


@router.get("/fission/tasks/{task_id}/funnel", tags=FISSION, responses=answers(404))
async def fission_funnel(task_id: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """Codes issued → scans → joins → counted → completed, why joins did not count, and the
    join rate (joins/scans) and completion rate (completions/joins)."""
    return await ops.fission_funnel(principal.tenant_id, task_id)


@router.get("/fission/tasks/{task_id}/inviters", tags=FISSION, responses=answers(404))
async def inviters(
    task_id: IdInPath,
    principal: Viewer,
    ops: Ops,
    limit: PageLimit = 100,
    after: PageAfter = None,
) -> dict[str, Any]:
    """The task's inviters: invitees counted, when they completed it, and their reward."""
    return await ops.inviters(principal.tenant_id, task_id, limit, after)
