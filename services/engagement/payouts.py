"""Red packets' I/O. A payout is a document (`_id = tenant:payout_id`): asked for by an operator
(a birthday, a task's reward) or found in the chat (a show-your-order, which waits for an
admin's approval). Paying takes the amount from the group's budget of the day — one document,
updated only while what is spent plus the amount stays within the budget, and only once per
payout (it lists the payouts it paid) — and then sends a `send_red_packet` action whose id is
the payout's: asked again after a crash, a payout is paid once and sent once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import DuplicateKeyError

from services.engagement.directory import Directory
from services.engagement.redpackets import Kind, is_show_order, minor
from services.engagement.settings import TenantSettings
from services.gen.shequn.v1 import events_pb2
from services.runtime import metrics
from services.runtime.bus import Outgoing, Producer, group_key, outgoing
from services.runtime.envelope import new_action, new_event
from services.runtime.instants import stamp
from services.runtime.refusals import Conflict, Invalid, NotFound
from services.runtime.settings import Settings
from services.runtime.store import Document, Indexes, Store, in_order_once, insert_new

PAYOUTS = "red_packets"
BUDGETS = "red_packet_budgets"
INDEXES = [Indexes(PAYOUTS, [IndexModel([("awaiting", ASCENDING)])])]
_PAID_KEPT = 1000  # per group and day, the payouts a budget remembers having paid


class Payouts:
    def __init__(
        self, store: Store, producer: Producer, settings: Settings, configured: TenantSettings
    ) -> None:
        self.payouts, self.budgets = store[PAYOUTS], store[BUDGETS]
        self.directory = Directory(store)
        self.producer, self.topic, self.configured = producer, settings.topic_actions, configured
        self.events_topic = settings.topic_events
        self.tz = ZoneInfo(settings.default_timezone)

    async def handle(self, messages: Sequence[events_pb2.Event]) -> None:
        """Show-your-order pictures in a batch: payouts awaiting an admin's approval."""
        if not messages:
            return
        found = await self.configured.for_groups({(e.tenant_id, e.group_id) for e in messages})
        shown = [
            e
            for e in messages
            if is_show_order(
                _kind(e),
                e.message_posted.message.text,
                found[(e.tenant_id, e.group_id)][0].red_packets,
            )
        ]
        await insert_new(
            self.payouts,
            [
                _payout(e.tenant_id, f"show-{e.event_id}", "show_order", e.message_posted.member.id,
                        e.group_id, e.platform, awaiting=True) | {"event_id": e.event_id}
                for e in shown
            ],
        )  # fmt: skip

    async def request(
        self, tenant_id: str, payout_id: str, kind: Kind, member_id: str, group_id: str
    ) -> dict[str, Any]:
        """A birthday's or a task's red packet, paid now if the budget allows."""
        platform = await self.directory.platform(tenant_id, group_id)
        doc = _payout(tenant_id, payout_id, kind, member_id, group_id, platform)
        try:
            await self.payouts.insert_one(doc)
        except DuplicateKeyError:
            found = await self.payouts.find_one({"_id": doc["_id"]})
            assert found is not None
            if (found["kind"], found["member_id"], found["group_id"]) != (
                kind,
                member_id,
                group_id,
            ):
                raise Conflict("payout_id: already used for another payout") from None
            doc = found
        return await self._pay(doc)

    async def decide(self, tenant_id: str, payout_id: str, approve: bool) -> dict[str, Any]:
        """An admin's word on a show-your-order: approved (paid if the budget allows) or not."""
        doc = await self.payouts.find_one({"_id": f"{tenant_id}:{payout_id}"})
        if doc is None:
            raise NotFound("no red packet of this id")
        if not approve:
            if doc["state"] == "paid":
                raise Conflict("already paid")
            await self.payouts.update_one(
                {"_id": doc["_id"]}, {"$set": {"state": "rejected"}, "$unset": {"awaiting": ""}}
            )
            return _shown({**doc, "state": "rejected"})
        return await self._pay(doc)

    async def _pay(self, doc: Document) -> dict[str, Any]:
        if doc["state"] in ("paid", "rejected"):
            return _shown(doc)
        tenant_id, group_id = doc["tenant_id"], doc["group_id"]
        [(settings, _)] = (await self.configured.for_groups({(tenant_id, group_id)})).values()
        rules = settings.red_packets
        payout = rules.payout(doc["kind"])
        if not payout.enabled:
            raise Invalid("kind", f"{doc['kind']} red packets are off in this group")
        amount = minor(payout.amount)
        day = datetime.now(UTC).astimezone(settings.zone(self.tz)).date().isoformat()
        budget_id = f"{tenant_id}:{group_id}:{day}"
        if amount <= rules.budget_minor():
            taken = UpdateOne(
                {
                    "$and": [
                        {"_id": budget_id},
                        {"paid": {"$nin": [doc["_id"]]}},
                        {"spent_minor": {"$lte": rules.budget_minor() - amount}},
                    ]
                },
                {
                    "$inc": {"spent_minor": amount},
                    "$push": {"paid": {"$each": [doc["_id"]], "$slice": -_PAID_KEPT}},
                },
                upsert=True,
            )
            # Skipped when the budget is spent, or when it took this payout before.
            await in_order_once(self.budgets, [taken])
        budget = await self.budgets.find_one({"_id": budget_id}, {"paid": 1})
        if budget is None or doc["_id"] not in budget.get("paid", []):
            metrics.RED_PACKETS.labels(doc["kind"], "over_budget").inc()
            await self.payouts.update_one({"_id": doc["_id"]}, {"$set": {"over_budget": day}})
            raise Conflict("over_budget")
        await self.payouts.update_one(
            {"_id": doc["_id"]},
            {
                "$set": {"state": "paid", "amount_minor": amount, "day": day},
                "$unset": {"awaiting": ""},
            },
        )
        await self.producer.send_many(
            [self._red_packet(doc, amount, payout.greeting), self._paid(doc, amount)]
        )
        metrics.RED_PACKETS.labels(doc["kind"], "paid").inc()
        return _shown({**doc, "state": "paid", "amount_minor": amount})

    def _red_packet(self, doc: Document, amount: int, greeting: str) -> Outgoing:
        action = new_action(
            f"engagement:red_packet:{doc['_id']}",
            doc["tenant_id"],
            doc["group_id"],
            doc["platform"],
            "engagement",
            doc.get("event_id", ""),
        )
        packet = action.send_red_packet
        packet.total.minor, packet.total.currency = amount, "CNY"
        packet.count, packet.greeting, packet.member_id = 1, greeting, doc["member_id"]
        return outgoing(self.topic, group_key(doc["tenant_id"], doc["group_id"]), action)

    def _paid(self, doc: Document, amount: int) -> Outgoing:
        """The spend, for analytics: an event at the time of paying, named by the payout."""
        now = datetime.now(UTC)
        event = new_event(
            f"engagement:red_packet:{doc['_id']}",
            doc["tenant_id"], doc["group_id"], doc["platform"], now, now,
        )  # fmt: skip
        paid = event.red_packet_paid
        paid.member.id, paid.kind = doc["member_id"], doc["kind"]
        paid.amount.minor, paid.amount.currency = amount, "CNY"
        return outgoing(self.events_topic, group_key(doc["tenant_id"], doc["group_id"]), event)

    async def awaiting(self, tenant_id: str, limit: int) -> list[dict[str, Any]]:
        """Show-your-orders waiting for an admin, oldest first."""
        found = self.payouts.find({"awaiting": tenant_id}).sort("requested", 1).limit(limit)
        return [_shown(d) async for d in found]


def _payout(
    tenant_id: str,
    payout_id: str,
    kind: str,
    member_id: str,
    group_id: str,
    platform: int,
    awaiting: bool = False,
) -> Document:
    doc: Document = {
        "_id": f"{tenant_id}:{payout_id}",
        "tenant_id": tenant_id,
        "payout_id": payout_id,
        "kind": kind,
        "member_id": member_id,
        "group_id": group_id,
        "platform": platform,
        "state": "awaiting_approval" if awaiting else "requested",
        "requested": stamp(datetime.now(UTC)),
    }
    if awaiting:
        doc["awaiting"] = tenant_id
    return doc


def _shown(doc: Document) -> dict[str, Any]:
    amount = doc.get("amount_minor")
    return {
        "payout_id": doc["payout_id"],
        "kind": doc["kind"],
        "member_id": doc["member_id"],
        "group_id": doc["group_id"],
        "state": doc["state"],
        "amount": amount / 100 if amount is not None else None,
    }


def _kind(e: events_pb2.Event) -> str:
    return (
        events_pb2.MessageKind.Name(e.message_posted.message.kind)
        .removeprefix("MESSAGE_KIND_")
        .lower()
    )
