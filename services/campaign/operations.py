"""What campaign's HTTP and gRPC APIs both do: one place for each operation and what it
refuses (`runtime.refusals`), each edge only translating."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from services.campaign.broadcast import Broadcast
from services.campaign.broadcasts import Broadcasts
from services.campaign.coupon import Coupon
from services.campaign.coupons import Coupons
from services.campaign.fission import FissionTask
from services.campaign.fissions import Fissions
from services.campaign.groups import Groups
from services.campaign.livecode import LiveCode
from services.campaign.livecodes import LiveCodes
from services.campaign.sop import Schedule
from services.campaign.sops import Schedules
from services.runtime.ratelimit import RateLimited, TokenBuckets
from services.runtime.refusals import valid
from services.runtime.settings import Settings
from services.runtime.wellformed import key_part, page_args


@dataclass(frozen=True)
class Operations:
    groups: Groups
    coupons: Coupons
    livecodes: LiveCodes
    broadcasts: Broadcasts
    schedules: Schedules
    fissions: Fissions
    settings: Settings
    per_code: TokenBuckets
    per_address: TokenBuckets

    async def create_schedule(self, tenant_id: str, body: Any) -> dict[str, str]:
        return await self.schedules.create(tenant_id, valid(Schedule, body))

    async def schedule(self, tenant_id: str, schedule_id: str) -> dict[str, Any]:
        return await self.schedules.get(tenant_id, key_part("schedule_id", schedule_id))

    async def replace_schedule(self, tenant_id: str, schedule_id: str, body: Any) -> dict[str, Any]:
        key_part("schedule_id", schedule_id)
        return await self.schedules.replace(tenant_id, schedule_id, valid(Schedule, body))

    async def delete_schedule(self, tenant_id: str, schedule_id: str) -> None:
        await self.schedules.delete(tenant_id, key_part("schedule_id", schedule_id))

    async def schedule_runs(self, tenant_id: str, schedule_id: str, limit: int) -> dict[str, Any]:
        page_args(limit, None)
        key_part("schedule_id", schedule_id)
        return {"runs": await self.schedules.runs(tenant_id, schedule_id, limit)}

    async def broadcast(self, tenant_id: str, body: Any) -> dict[str, Any]:
        """Send one message to the groups chosen; the groups skipped, with why."""
        return await self.broadcasts.send(tenant_id, valid(Broadcast, body))

    async def directory(
        self, tenant_id: str, tag: str | None, owner: str | None, limit: int, after: str | None
    ) -> dict[str, Any]:
        page_args(limit, after)
        return await self.groups.page(tenant_id, tag, owner, limit, after)

    async def listed(
        self, tenant_id: str, kind: str, limit: int, after: str | None
    ) -> dict[str, Any]:
        """A page of the tenant's live codes, coupons, schedules, broadcasts or fission tasks."""
        page_args(limit, after)
        lists: dict[str, Callable[[str, int, str | None], Awaitable[dict[str, Any]]]] = {
            "livecodes": self.livecodes.page,
            "coupons": self.coupons.page,
            "schedules": self.schedules.page,
            "broadcasts": self.broadcasts.page,
            "fission_tasks": self.fissions.page,
        }
        return await lists[kind](tenant_id, limit, after)

    async def broadcast_counts(self, tenant_id: str, broadcast_id: str) -> dict[str, Any]:
        return await self.broadcasts.get(tenant_id, key_part("broadcast_id", broadcast_id))

    async def create_livecode(self, tenant_id: str, body: Any) -> dict[str, Any]:
        return await self.livecodes.create(tenant_id, valid(LiveCode, body))

    async def livecode(self, tenant_id: str, code: str) -> dict[str, Any]:
        return await self.livecodes.get(tenant_id, key_part("code", code))

    async def scan(self, code: str, scanner_id: str, address: str) -> dict[str, str]:
        key_part("code", code)
        if wait := self.per_address.take(address):
            raise RateLimited("too many scans from this address", wait)
        if wait := self.per_code.take(code):
            raise RateLimited("too many scans of this code", wait)
        scanned = await self.livecodes.scan(code, scanner_id)
        if scanned.invite is not None:
            await self.fissions.scanned(scanned)
        return {"group_id": scanned.group_id, "join_token": scanned.join_token}

    async def create_coupon(self, tenant_id: str, body: Any) -> dict[str, Any]:
        return {"coupon_id": await self.coupons.create(tenant_id, valid(Coupon, body))}

    async def coupon(self, tenant_id: str, coupon_id: str) -> dict[str, Any]:
        """A coupon with its codes `issued`, `remaining` and `redeemed`."""
        return await self.coupons.get(tenant_id, key_part("coupon_id", coupon_id))

    async def issue_coupon(
        self, tenant_id: str, coupon_id: str, member_id: str, issue_id: str | None
    ) -> dict[str, Any]:
        """A code for the member; the same `issue_id` again answers the same code."""
        key_part("coupon_id", coupon_id)
        key_part("member_id", member_id)
        chosen = key_part("issue_id", issue_id) if issue_id else f"i-{secrets.token_hex(8)}"
        found = await self.coupons.issue(tenant_id, coupon_id, member_id, f"api:{chosen}")
        return {**found, "issue_id": chosen}

    async def create_fission_task(self, tenant_id: str, body: Any) -> dict[str, Any]:
        task = valid(FissionTask, body)
        return await self.fissions.create(tenant_id, task, f"f-{secrets.token_hex(6)}")

    async def fission_task(self, tenant_id: str, task_id: str) -> dict[str, Any]:
        return await self.fissions.get(tenant_id, key_part("task_id", task_id))

    async def invite_code(
        self, tenant_id: str, task_id: str, member_id: str, group_id: str | None
    ) -> dict[str, Any]:
        """The member's personal invite code (the same one when asked again)."""
        key_part("task_id", task_id)
        key_part("member_id", member_id)
        if group_id:
            key_part("group_id", group_id)
        return await self.fissions.code(tenant_id, task_id, member_id, group_id)

    async def fission_funnel(self, tenant_id: str, task_id: str) -> dict[str, Any]:
        return await self.fissions.funnel(tenant_id, key_part("task_id", task_id))

    async def inviters(
        self, tenant_id: str, task_id: str, limit: int, after: str | None
    ) -> dict[str, Any]:
        page_args(limit, after)
        return await self.fissions.inviters(tenant_id, key_part("task_id", task_id), limit, after)
