"""What engagement's HTTP and gRPC APIs both do: one place for each operation and what it
refuses (`runtime.refusals`), each edge only translating."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from pymongo.asynchronous.collection import AsyncCollection

from services.engagement.asked import Questions
from services.engagement.autoreplies import AutoReplies
from services.engagement.autoreply import Rule
from services.engagement.conversations import Conversations
from services.engagement.lotteries import Lotteries
from services.engagement.lottery import Lottery
from services.engagement.payouts import Payouts
from services.engagement.points import Grant, Points
from services.engagement.questions import Poll, Quiz
from services.engagement.settings import EngagementSettings, TenantSettings
from services.engagement.templates import Templates
from services.runtime.overrides import merged
from services.runtime.refusals import Conflict, Invalid, NotFound, invalid, valid
from services.runtime.store import Document
from services.runtime.wellformed import key_part

MAX_GRANT = 1_000_000
MAX_REASON = 200


@dataclass(frozen=True)
class Operations:
    points: Points
    configured: TenantSettings
    profiles: AsyncCollection[Document]
    autoreplies: AutoReplies
    lotteries: Lotteries
    questions: Questions
    conversations: Conversations
    payouts: Payouts
    templates: Templates

    async def red_packet(
        self, tenant_id: str, payout_id: str, kind: str, member_id: str, group_id: str
    ) -> dict[str, Any]:
        """A birthday's or a task's red packet for a member in a group, within its budget."""
        for name, value in (
            ("payout_id", payout_id),
            ("member_id", member_id),
            ("group_id", group_id),
        ):
            key_part(name, value)
        if kind not in ("birthday", "task_reward"):
            raise Invalid("kind", "birthday or task_reward (show_order comes from the chat)")
        return await self.payouts.request(tenant_id, payout_id, kind, member_id, group_id)  # type: ignore[arg-type]

    async def decide_red_packet(
        self, tenant_id: str, payout_id: str, approve: bool
    ) -> dict[str, Any]:
        return await self.payouts.decide(tenant_id, key_part("payout_id", payout_id), approve)

    async def awaiting_red_packets(self, tenant_id: str, limit: int) -> list[dict[str, Any]]:
        if not 1 <= limit <= 500:
            raise Invalid("limit", "1 to 500")
        return await self.payouts.awaiting(tenant_id, limit)

    async def segments(self, tenant_id: str, group_id: str, day: str | None) -> dict[str, Any]:
        """A group's segments on a day (today in the tenant's time zone unless named)."""
        key_part("group_id", group_id)
        try:
            on = date.fromisoformat(day) if day else None
        except ValueError:
            raise Invalid("date", "a day as YYYY-MM-DD") from None
        on = on or await self.conversations.today(tenant_id, group_id)
        return await self.conversations.segments(tenant_id, group_id, on)

    async def ask(self, tenant_id: str, kind: str, body: Any) -> dict[str, Any]:
        """Put a quiz or a poll to its group."""
        asked: Quiz | Poll = valid(Quiz, body) if kind == "quiz" else valid(Poll, body)
        key_part("group_id", asked.group_id)
        if asked.closes_at <= datetime.now(UTC):
            raise Invalid("closes_at", "must be in the future")
        return {f"{kind}_id": await self.questions.ask(tenant_id, asked)}

    async def question(self, tenant_id: str, kind: str, question_id: str) -> dict[str, Any]:
        """A quiz (its winner; its answers once closed) or a poll (its results, once closed
        or when they are not hidden)."""
        return await self.questions.get(tenant_id, kind, key_part(f"{kind}_id", question_id))

    async def create_lottery(self, tenant_id: str, body: Any) -> dict[str, Any]:
        lottery = valid(Lottery, body)
        return {"lottery_id": await self.lotteries.create(tenant_id, lottery)}

    async def lottery(self, tenant_id: str, lottery_id: str) -> dict[str, Any]:
        """A lottery with each prize's `remaining` stock."""
        return await self.lotteries.get(tenant_id, key_part("lottery_id", lottery_id))

    async def draw(
        self, tenant_id: str, lottery_id: str, member_id: str, draw_id: str | None
    ) -> dict[str, Any]:
        """A draw for a member; the same `draw_id` again answers that draw again."""
        key_part("lottery_id", lottery_id)
        key_part("member_id", member_id)
        chosen = key_part("draw_id", draw_id) if draw_id else f"d-{secrets.token_hex(8)}"
        return await self.lotteries.draw(tenant_id, lottery_id, member_id, chosen)

    async def member_draws(
        self, tenant_id: str, lottery_id: str, member_id: str, limit: int, before: str | None
    ) -> dict[str, Any]:
        """A member's draws, newest first (`at` in epoch microseconds), and the next page's
        cursor."""
        key_part("lottery_id", lottery_id)
        key_part("member_id", member_id)
        if not 1 <= limit <= 500:
            raise Invalid("limit", "1 to 500")
        await self.lotteries.get(tenant_id, lottery_id)  # 404 for another tenant's
        found, more = await self.lotteries.draws_of(tenant_id, lottery_id, member_id, limit, before)
        return {"draws": found, "next": more}

    async def autoreply_rules(self, tenant_id: str) -> list[dict[str, Any]]:
        rules = await self.autoreplies.of_tenant(tenant_id)
        return [{"rule_id": i, **r.model_dump(mode="json")} for i, r in rules.items()]

    async def autoreply_rule(self, tenant_id: str, rule_id: str) -> dict[str, Any]:
        rules = await self.autoreplies.of_tenant(tenant_id)
        if (rule := rules.get(key_part("rule_id", rule_id))) is None:
            raise NotFound("no auto-reply rule of this id")
        return {"rule_id": rule_id, **rule.model_dump(mode="json")}

    async def create_autoreply(self, tenant_id: str, body: Any) -> dict[str, Any]:
        """A new rule, and the rules it overlaps (a message would trigger both)."""
        rule_id, overlapping = await self.autoreplies.create(tenant_id, valid(Rule, body))
        return {"rule_id": rule_id, "overlaps": overlapping}

    async def replace_autoreply(self, tenant_id: str, rule_id: str, body: Any) -> dict[str, Any]:
        key_part("rule_id", rule_id)
        overlapping = await self.autoreplies.replace(tenant_id, rule_id, valid(Rule, body))
        return {"rule_id": rule_id, "overlaps": overlapping}

    async def delete_autoreply(self, tenant_id: str, rule_id: str) -> None:
        await self.autoreplies.delete(tenant_id, key_part("rule_id", rule_id))

    async def profile(self, tenant_id: str, member_id: str) -> dict[str, Any]:
        """What engagement knows of a member: the latest activity, orders, spend and tier."""
        key_part("member_id", member_id)
        doc = await self.profiles.find_one({"_id": f"{tenant_id}:{member_id}"})
        if doc is None:
            raise NotFound("no activity of this member in the tenant")
        return {
            "member_id": member_id,
            "name": doc.get("name", ""),
            "last_group_id": doc.get("last_group_id", ""),
            "last_event": doc.get("last_event", ""),
            "last_seen_at": doc.get("last_seen_at"),  # epoch microseconds, or None
            "orders": int(doc.get("orders", 0)),
            "spend": int(doc.get("spend_minor", 0)) / 100,
            "tier": doc.get("tier", "regular"),
            "tags": sorted(doc.get("tags", [])),
        }

    async def settings(self, tenant_id: str, group_id: str | None = None) -> dict[str, Any]:
        """The tenant's settings; for a group, its override and the settings in effect."""
        tenant = await self.configured.tenant(tenant_id)
        if group_id is None:
            return tenant.model_dump()
        override = await self.configured.override(tenant_id, key_part("group_id", group_id))
        effective = merged(tenant, override).model_dump()
        return {"group_id": group_id, "override": override or {}, "effective": effective}

    async def put_settings(self, tenant_id: str, body: dict[str, Any]) -> dict[str, Any]:
        value = valid(EngagementSettings, body)
        await self.configured.put_tenant(tenant_id, value)
        await self.templates.resync(tenant_id)
        return value.model_dump()

    async def put_group_settings(
        self, tenant_id: str, group_id: str, override: dict[str, Any]
    ) -> dict[str, Any]:
        key_part("group_id", group_id)
        try:
            merged(await self.configured.tenant(tenant_id), override)
        except ValidationError as exc:
            raise invalid(exc.errors()) from None
        await self.configured.put_group(tenant_id, group_id, override)
        await self.templates.resync(tenant_id, group_id)
        return await self.settings(tenant_id, group_id)

    async def delete_group_settings(self, tenant_id: str, group_id: str) -> None:
        if not await self.configured.delete_group(tenant_id, key_part("group_id", group_id)):
            raise NotFound("this group has no override")
        await self.templates.resync(tenant_id, group_id)

    async def welcome_templates(
        self, tenant_id: str, limit: int, after: str | None
    ) -> dict[str, Any]:
        if not 1 <= limit <= 500:
            raise Invalid("limit", "1 to 500")
        found, more = await self.templates.of_tenant(tenant_id, limit, after)
        return {"templates": found, "next": more}

    async def member_points(
        self, tenant_id: str, member_id: str, limit: int, before: str | None
    ) -> dict[str, Any]:
        """A member's balance and ledger entries, newest first (`at` in epoch microseconds)."""
        key_part("member_id", member_id)
        if not 1 <= limit <= 500:
            raise Invalid("limit", "1 to 500")
        entries, more = await self.points.entries(tenant_id, member_id, limit, before)
        balance = await self.points.balance(tenant_id, member_id)
        return {"member_id": member_id, "balance": balance, "entries": entries, "next": more}

    async def grant(
        self, tenant_id: str, grant_id: str, member_id: str, points: int, reason: str
    ) -> dict[str, Any]:
        """Give (or, negative, deduct) points by hand, once per `grant_id`."""
        key_part("grant_id", grant_id)
        key_part("member_id", member_id)
        if points == 0 or not -MAX_GRANT <= points <= MAX_GRANT:
            raise Invalid("points", f"a whole number from -{MAX_GRANT} to {MAX_GRANT}, not 0")
        if len(reason) > MAX_REASON:
            raise Invalid("reason", f"at most {MAX_REASON} characters")
        change = Grant(tenant_id, member_id, f"grant:{grant_id}", points, reason, datetime.now(UTC))
        [result] = await self.points.apply([change])
        earlier = result.entry
        if earlier and (earlier["member_id"], earlier["points"]) != (member_id, points):
            raise Conflict("grant_id: already used for another grant")
        if not result.booked:
            raise Conflict("insufficient_points")
        return {"grant_id": grant_id, "member_id": member_id, "balance": result.balance}
