"""HTTP (API.md "Group live codes", "Campaign"): live codes and their public scan, coupons and
their codes. Each route calls its operation (`operations.py`)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.campaign.broadcast import Broadcast
from services.campaign.coupon import Coupon
from services.campaign.livecode import LiveCode
from services.campaign.operations import Operations
from services.campaign.sop import Schedule
from services.runtime.http import (
    Admin,
    IdInPath,
    Operator,
    PageAfter,
    PageLimit,
    Viewer,
    client_address,
    provided,
)
from services.runtime.openapi import answers
from services.runtime.ratelimit import RateLimited, too_many
from services.runtime.wellformed import KeyPart

Ops = Annotated[Operations, Depends(provided(Operations))]
router = APIRouter(prefix="/v1")
COUPONS: list[str | Enum] = ["coupons"]
LIVECODES: list[str | Enum] = ["live codes"]
BROADCASTS: list[str | Enum] = ["broadcasts"]
SOP: list[str | Enum] = ["SOP schedules"]


class ScanIn(BaseModel):
    scanner_id: str = Field("", max_length=128, description="who scanned, if the page knows")


class Scanned(BaseModel):
    group_id: str
    join_token: str = Field(description="what the join brings back (member_joined.join_token)")


# First: the public scan is the hottest route, and routes are matched in order.
@router.post(
    "/livecodes/{code}/scan",
    tags=LIVECODES,
    response_model=Scanned,
    responses=answers(404, 409, 429),
)
async def scan_livecode(
    code: IdInPath, request: Request, ops: Ops, body: ScanIn | None = None
) -> Any:
    """Public (no key): the group to join and the token its join brings back, or 409 `full`.
    Limited per code and per client address (429 with Retry-After)."""
    try:
        address = client_address(request, ops.settings.trusted_proxies)
        found = await ops.scan(code, (body or ScanIn()).scanner_id, address)
    except RateLimited as exc:
        return too_many(exc)
    # Answered as it is: the hottest public route skips validating its own two strings.
    return JSONResponse(found)


@router.get("/livecodes", tags=LIVECODES)
async def livecodes(
    principal: Viewer, ops: Ops, limit: PageLimit = 100, after: PageAfter = None
) -> dict[str, Any]:
    """The tenant's live codes, by name."""
    return await ops.listed(principal.tenant_id, "livecodes", limit, after)


@router.post("/livecodes", tags=LIVECODES, status_code=201, responses=answers(409, 422))
async def create_livecode(body: LiveCode, principal: Operator, ops: Ops) -> dict[str, Any]:
    """A live code: scans fill its groups in order, each up to the capacity. 409 when another
    code (of any tenant) has the name."""
    return await ops.create_livecode(principal.tenant_id, body)


@router.get("/livecodes/{code}", tags=LIVECODES, responses=answers(404))
async def get_livecode(code: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """The code, with each group's `members`, `reserved` (scanned, not joined yet) and `free`."""
    return await ops.livecode(principal.tenant_id, code)


@router.get("/sop/schedules", tags=SOP)
async def schedules(
    principal: Viewer, ops: Ops, limit: PageLimit = 100, after: PageAfter = None
) -> dict[str, Any]:
    """The tenant's schedules, with their next slots."""
    return await ops.listed(principal.tenant_id, "schedules", limit, after)


@router.post("/sop/schedules", tags=SOP, status_code=201, responses=answers(422))
async def create_schedule(body: Schedule, principal: Operator, ops: Ops) -> dict[str, str]:
    """A schedule: its text sent to its groups at each slot of its cron rule, in its time zone;
    each (group, slot) once. A slot found after the grace window is recorded missed."""
    return await ops.create_schedule(principal.tenant_id, body)


@router.get("/sop/schedules/{schedule_id}", tags=SOP, responses=answers(404))
async def get_schedule(schedule_id: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """The schedule and its `next_slot`."""
    return await ops.schedule(principal.tenant_id, schedule_id)


@router.put("/sop/schedules/{schedule_id}", tags=SOP, responses=answers(404, 422))
async def replace_schedule(
    schedule_id: IdInPath, body: Schedule, principal: Operator, ops: Ops
) -> dict[str, Any]:
    """Edit the schedule: its slots from now on follow the new rule."""
    return await ops.replace_schedule(principal.tenant_id, schedule_id, body)


@router.delete("/sop/schedules/{schedule_id}", tags=SOP, status_code=204, responses=answers(404))
async def delete_schedule(schedule_id: IdInPath, principal: Operator, ops: Ops) -> None:
    await ops.delete_schedule(principal.tenant_id, schedule_id)


@router.get("/sop/schedules/{schedule_id}/runs", tags=SOP, responses=answers(404))
async def schedule_runs(
    schedule_id: IdInPath,
    principal: Viewer,
    ops: Ops,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The latest slots, newest first: fired (each group's outcome) or missed, and the groups
    skipped with why."""
    return await ops.schedule_runs(principal.tenant_id, schedule_id, limit)


@router.get("/directory/groups", tags=BROADCASTS)
async def directory(
    principal: Viewer,
    ops: Ops,
    tag: Annotated[str | None, Query(max_length=200, description="a series tag")] = None,
    owner: Annotated[str | None, Query(max_length=200, description="a staff member")] = None,
    limit: PageLimit = 100,
    after: PageAfter = None,
) -> dict[str, Any]:
    """The tenant's groups as campaign knows them from the events, those a broadcast chooses
    from: name, platform, status (active, dismissed), owner and series tags."""
    return await ops.directory(principal.tenant_id, tag, owner, limit, after)


@router.get("/broadcasts", tags=BROADCASTS)
async def broadcasts(
    principal: Viewer, ops: Ops, limit: PageLimit = 100, after: PageAfter = None
) -> dict[str, Any]:
    """The tenant's broadcasts, with their live counts."""
    return await ops.listed(principal.tenant_id, "broadcasts", limit, after)


@router.post("/broadcasts", tags=BROADCASTS, status_code=202, responses=answers(422))
async def broadcast(body: Broadcast, principal: Operator, ops: Ops) -> dict[str, Any]:
    """One message to up to 200 groups (by id, series tag or owner); the groups skipped, with
    why (dismissed, never seen, over WeCom's quota of group messages a day). The same
    `client_id` again answers the first broadcast and sends nothing twice."""
    return await ops.broadcast(principal.tenant_id, body)


@router.get("/broadcasts/{broadcast_id}", tags=BROADCASTS, responses=answers(404))
async def broadcast_counts(broadcast_id: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """Live counts of the broadcast's messages (pending, delivered, failed, unsupported,
    awaiting_confirmation: a WeCom task its owner has not confirmed yet), and each group's."""
    return await ops.broadcast_counts(principal.tenant_id, broadcast_id)


class IssueIn(BaseModel):
    member_id: KeyPart
    issue_id: KeyPart | None = Field(
        None, description="the client's id: asking again with it answers the same code"
    )


@router.get("/coupons", tags=COUPONS)
async def coupons(
    principal: Viewer, ops: Ops, limit: PageLimit = 100, after: PageAfter = None
) -> dict[str, Any]:
    """The tenant's coupon templates."""
    return await ops.listed(principal.tenant_id, "coupons", limit, after)


@router.post("/coupons", tags=COUPONS, status_code=201, responses=answers(422))
async def create_coupon(body: Coupon, principal: Admin, ops: Ops) -> dict[str, str]:
    """A coupon template with its stock of codes, each valid `valid_days` from its issue."""
    return await ops.create_coupon(principal.tenant_id, body)


@router.get("/coupons/{coupon_id}", tags=COUPONS, responses=answers(404))
async def get_coupon(coupon_id: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """The coupon, with how many of its codes are `issued`, `remaining` and `redeemed`."""
    return await ops.coupon(principal.tenant_id, coupon_id)


@router.post("/coupons/{coupon_id}/issues", tags=COUPONS, responses=answers(404, 409))
async def issue_coupon(
    coupon_id: IdInPath, body: IssueIn, principal: Operator, ops: Ops
) -> dict[str, Any]:
    """Issue a code to a member (a reward given by hand, say): 409 `sold_out` when no code is
    left. Redemptions come as `coupon_redeemed` events naming the code."""
    return await ops.issue_coupon(principal.tenant_id, coupon_id, body.member_id, body.issue_id)
