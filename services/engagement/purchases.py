"""Orders on the member profile: each order counted once (by its id, or its event's when it has
none) into the member's orders and spend, and the tier those make (`tiers.py`), in one
conditional write, one read, and one write of the tiers that changed, per batch."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import UpdateOne

from services.engagement.activity import PROFILES
from services.engagement.settings import TenantSettings
from services.engagement.tiers import tier_of
from services.gen.shequn.v1 import events_pb2
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
    def __init__(self, store: Store, configured: TenantSettings) -> None:
        self.profiles = store[PROFILES]
        self.configured = configured

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
        changes = []
        for i, doc in found.items():
            count, spend = int(doc.get("orders", 0)), int(doc.get("spend_minor", 0))
            if (tier := tier_of(count, spend, rules[i])) != doc.get("tier"):
                # Over the counts it was worked out from: a replica that counted another order
                # meanwhile works the tier out from both.
                read = {"$and": [{"_id": i}, {"orders": count}, {"spend_minor": spend}]}
                changes.append(UpdateOne(read, {"$set": {"tier": tier}}))
        if changes:
            await self.profiles.bulk_write(changes, ordered=False)
