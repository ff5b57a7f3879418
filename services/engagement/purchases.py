"""Orders on the member profile: each order counted once (by its id, or its event's when it has
none) into the member's orders and spend, and the tier those make (`tiers.py`), in one
conditional write, one read, and one write of the tiers that changed, per batch. A tier that
changes is said on the events topic (`member_tier_changed`, in the group of the member's last
order) before it is written, under an id made of the change: a batch read again after a crash
says it again, with the same id, and campaign's invitations up the tier ladder happen once."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import UpdateOne

from services.engagement.activity import PROFILES
from services.engagement.settings import TenantSettings
from services.engagement.tiers import tier_of
from services.gen.shequn.v1 import events_pb2
from services.runtime.bus import Outgoing, Producer, group_key, outgoing
from services.runtime.envelope import natural_id, new_event, occurred_at
from services.runtime.store import Store, in_order_once

ORDERS_KEPT = 100  # per member: an order delivered again is one of their last ones


def _profile_id(e: events_pb2.Event) -> str:
    return f"{e.tenant_id}:{e.order_placed.member.id}"


def _counted(e: events_pb2.Event) -> UpdateOne:
    order = e.order_placed
    key = f"order:{order.order_id}" if order.order_id else f"event:{e.event_id}"
    cny = order.amount.minor if order.amount.currency in ("", "CNY") else 0
    return UpdateOne(
        {"$and": [{"_id": _profile_id(e)}, {"orders_seen": {"$nin": [key]}}]},
        {
            "$inc": {"orders": 1, "spend_minor": cny},
            "$push": {"orders_seen": {"$each": [key], "$slice": -ORDERS_KEPT}},
            "$setOnInsert": {"tenant_id": e.tenant_id, "member_id": order.member.id},
        },
        upsert=True,
    )


class Purchases:
    def __init__(
        self, store: Store, configured: TenantSettings, producer: Producer, topic: str
    ) -> None:
        self.profiles = store[PROFILES]
        self.configured = configured
        self.producer, self.topic = producer, topic

    async def handle(self, events: Sequence[events_pb2.Event]) -> None:
        orders = [
            e
            for e in events
            if e.WhichOneof("payload") == "order_placed" and e.order_placed.member.id
        ]
        if not orders:
            return
        await in_order_once(self.profiles, [_counted(e) for e in orders])
        groups = await self.configured.for_groups({(e.tenant_id, e.group_id) for e in orders})
        ids = sorted({_profile_id(e) for e in orders})
        found = {d["_id"]: d async for d in self.profiles.find({"_id": {"$in": ids}})}
        # The rules of the group of the member's last order in the batch.
        rules = {_profile_id(e): groups[(e.tenant_id, e.group_id)][0].tiers for e in orders}
        last = {_profile_id(e): e for e in orders}
        changes, said = [], []
        for i, doc in found.items():
            count, spend = int(doc.get("orders", 0)), int(doc.get("spend_minor", 0))
            if (tier := tier_of(count, spend, rules[i])) != doc.get("tier"):
                # Over the counts it was worked out from: a replica that counted another order
                # meanwhile works the tier out from both.
                read = {"$and": [{"_id": i}, {"orders": count}, {"spend_minor": spend}]}
                changes.append(UpdateOne(read, {"$set": {"tier": tier}}))
                said.append(self._changed(last[i], tier, doc.get("tier", ""), count))
        if changes:
            await self.producer.send_many(said)
            await self.profiles.bulk_write(changes, ordered=False)

    def _changed(self, order: events_pb2.Event, tier: str, previous: str, count: int) -> Outgoing:
        member = order.order_placed.member
        at = occurred_at(order)
        event = new_event(
            natural_id("engagement", "tier", member.id, tier, str(count)),
            order.tenant_id, order.group_id, order.platform, at, at,
        )  # fmt: skip
        event.member_tier_changed.member.CopyFrom(member)
        event.member_tier_changed.tier, event.member_tier_changed.previous = tier, previous
        return outgoing(self.topic, group_key(order.tenant_id, order.group_id), event)
