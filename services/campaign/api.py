"""HTTP (API.md "Group live codes", "Campaign"): live codes and their public scan, coupons and
their codes. Each route calls its operation (`operations.py`)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from services.campaign.coupon import Coupon
from services.campaign.livecode import LiveCode
from services.campaign.operations import Operations
from services.runtime.http import Admin, IdInPath, Operator, Viewer, client_address, provided
from services.runtime.openapi import answers
from services.runtime.ratelimit import RateLimited, too_many
from services.runtime.wellformed import KeyPart

Ops = Annotated[Operations, Depends(provided(Operations))]
router = APIRouter(prefix="/v1")
COUPONS: list[str | Enum] = ["coupons"]
LIVECODES: list[str | Enum] = ["live codes"]


class ScanIn(BaseModel):
    scanner_id: str = Field("", max_length=128, description="who scanned, if the page knows")


class Scanned(BaseModel):
    group_id: str
    join_token: str = Field(description="what the join brings back (member_joined.join_token)")


@router.post("/livecodes", tags=LIVECODES, status_code=201, responses=answers(409, 422))
async def create_livecode(body: LiveCode, principal: Operator, ops: Ops) -> dict[str, Any]:
    """A live code: scans fill its groups in order, each up to the capacity. 409 when another
    code (of any tenant) has the name."""
    return await ops.create_livecode(principal.tenant_id, body)


@router.get("/livecodes/{code}", tags=LIVECODES, responses=answers(404))
async def get_livecode(code: IdInPath, principal: Viewer, ops: Ops) -> dict[str, Any]:
    """The code, with each group's `members`, `reserved` (scanned, not joined yet) and `free`."""
    return await ops.livecode(principal.tenant_id, code)


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
        return await ops.scan(code, (body or ScanIn()).scanner_id, address)
    except RateLimited as exc:
        return too_many(exc)


class IssueIn(BaseModel):
    member_id: KeyPart
    issue_id: KeyPart | None = Field(
        None, description="the client's id: asking again with it answers the same code"
    )


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
