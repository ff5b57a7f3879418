"""HTTP (API.md "Engagement"): lotteries and their draws, quizzes and polls. Each route calls
its operation (`operations.py`)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from services.engagement.lottery import Lottery
from services.engagement.operations import Operations
from services.engagement.questions import Poll, Quiz
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


QUESTIONS: list[str | Enum] = ["quizzes and polls"]


@router.post("/quizzes", tags=QUESTIONS, status_code=201, responses=answers(404, 422))
async def ask_quiz(body: Quiz, principal: Operator, ops: Ops) -> dict[str, str]:
    """Post a quiz to a group: the first correct answer (normalized) wins the points."""
    return await ops.ask(principal.tenant_id, "quiz", body)


@router.get("/quizzes/{quiz_id}", tags=QUESTIONS, responses=answers(404))
async def get_quiz(quiz_id: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """The quiz: open, won (with the winner) or closed; its answers once it is not open."""
    return await ops.question(principal.tenant_id, "quiz", quiz_id)


@router.post("/polls", tags=QUESTIONS, status_code=201, responses=answers(404, 422))
async def ask_poll(body: Poll, principal: Operator, ops: Ops) -> dict[str, str]:
    """Post a poll to a group: one vote per member (the first), by number or option text."""
    return await ops.ask(principal.tenant_id, "poll", body)


@router.get("/polls/{poll_id}", tags=QUESTIONS, responses=answers(404))
async def get_poll(poll_id: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """The poll; its results once it closed, or all along when they are not hidden."""
    return await ops.question(principal.tenant_id, "poll", poll_id)


RED_PACKETS: list[str | Enum] = ["red packets"]


class RedPacketIn(BaseModel):
    payout_id: KeyPart = Field(description="the client's id: asking again pays nothing twice")
    kind: Literal["birthday", "task_reward"]
    member_id: KeyPart
    group_id: KeyPart


@router.post("/red-packets", tags=RED_PACKETS, responses=answers(404, 409, 422))
async def red_packet(body: RedPacketIn, principal: Operator, ops: Ops) -> dict[str, Any]:
    """Pay a member a birthday's or a task's red packet in a group, the amount of the group's
    rule; 409 `over_budget` when the group's budget of the day cannot cover it."""
    return await ops.red_packet(
        principal.tenant_id, body.payout_id, body.kind, body.member_id, body.group_id
    )


@router.get("/red-packets/awaiting", tags=RED_PACKETS)
async def awaiting_red_packets(
    principal: Viewer, ops: Ops, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict[str, Any]:
    """Show-your-orders (晒单) waiting for an admin's approval, oldest first."""
    return {"red_packets": await ops.awaiting_red_packets(principal.tenant_id, limit)}


@router.post("/red-packets/{payout_id}/approve", tags=RED_PACKETS, responses=answers(404, 409))
async def approve_red_packet(payout_id: IdInPath, principal: Admin, ops: Ops) -> dict[str, Any]:
    """Approve a show-your-order: paid if the group's budget of the day covers it."""
    return await ops.decide_red_packet(principal.tenant_id, payout_id, approve=True)


@router.post("/red-packets/{payout_id}/reject", tags=RED_PACKETS, responses=answers(404, 409))
async def reject_red_packet(payout_id: IdInPath, principal: Admin, ops: Ops) -> dict[str, Any]:
    return await ops.decide_red_packet(principal.tenant_id, payout_id, approve=False)
