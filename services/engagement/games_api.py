"""HTTP (API.md "Engagement"): lotteries and their draws. Each route calls its operation
(`operations.py`)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from services.engagement.lottery import Lottery
from services.engagement.operations import Operations
from services.runtime.http import Admin, IdInPath, Operator, Viewer, provided
from services.runtime.openapi import answers
from services.runtime.wellformed import KeyPart

Ops = Annotated[Operations, Depends(provided(Operations))]
router = APIRouter(prefix="/v1")
LOTTERIES: list[str | Enum] = ["lotteries"]


class DrawIn(BaseModel):
    member_id: KeyPart
    draw_id: KeyPart | None = Field(
        None, description="the client's id: asking again with it answers the same draw"
    )


@router.post("/lotteries", tags=LOTTERIES, status_code=201, responses=answers(422))
async def create_lottery(body: Lottery, principal: Admin, ops: Ops) -> dict[str, str]:
    """A prize pool: each prize drawn by its weight while its stock lasts."""
    return await ops.create_lottery(principal.tenant_id, body)


@router.get("/lotteries/{lottery_id}", tags=LOTTERIES, responses=answers(404))
async def get_lottery(lottery_id: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """The lottery, with each prize's `remaining` stock."""
    return await ops.lottery(principal.tenant_id, lottery_id)


@router.post("/lotteries/{lottery_id}/draws", tags=LOTTERIES, responses=answers(404, 409))
async def draw(lottery_id: IdInPath, body: DrawIn, principal: Operator, ops: Ops) -> dict[str, Any]:
    """Draw for a member, who pays the lottery's cost in points: `prize` is null for a blank;
    409 `insufficient_points` or `sold_out` (nothing paid)."""
    return await ops.draw(principal.tenant_id, lottery_id, body.member_id, body.draw_id)


@router.get("/lotteries/{lottery_id}/draws", tags=LOTTERIES, responses=answers(404))
async def member_draws(
    lottery_id: IdInPath,
    principal: Viewer,
    ops: Ops,
    member_id: Annotated[str, Query(max_length=128)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(max_length=400, description="the `next` of a page")] = None,
) -> dict[str, Any]:
    """A member's draws in the lottery, newest first (`at` in epoch microseconds)."""
    return await ops.member_draws(principal.tenant_id, lottery_id, member_id, limit, before)
