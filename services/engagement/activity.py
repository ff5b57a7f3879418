"""Each member's latest activity in the tenant (name, last group, last seen to the minute): the
start of the member profile that tiers and segments build on."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.envelope import occurred_at
from services.runtime.store import Document, LatestWins

PROFILES = "profiles"
# A profile's last seen is written again once it is this old: not with every message.
SEEN_EVERY = timedelta(minutes=1)


def _actor(event: events_pb2.Event) -> common_pb2.Member | None:
    kind = event.WhichOneof("payload")
    if kind in ("message_posted", "member_joined", "order_placed", "coupon_redeemed"):
        member: common_pb2.Member = getattr(event, kind).member
        return member
    return None


def activity_updates(events: Iterable[events_pb2.Event]) -> list[LatestWins]:
    updates = []
    for event in events:
        member = _actor(event)
        if member is None or not member.id:
            continue
        fields = {"last_group_id": event.group_id, "last_event": event.WhichOneof("payload")}
        if member.name:
            fields["name"] = member.name
        updates.append(
            LatestWins(
                f"{event.tenant_id}:{member.id}",
                "last_seen_at",
                occurred_at(event),
                fields,
                # `tags` from the start: NX-27017's `$addToSet` does nothing to a document
                # that lacks the field.
                {"tenant_id": event.tenant_id, "member_id": member.id, "tags": []},
            )
        )
    return updates


Tag = tuple[str, str, str]  # tenant, member, tag
PURCHASED = "已购"


def event_tags(events: Iterable[events_pb2.Event]) -> list[Tag]:
    """Tags the events give members: the channel of the live code they joined by (渠道:…),
    and 已购 once they ordered."""
    tags = []
    for event in events:
        kind = event.WhichOneof("payload")
        if kind == "member_joined" and event.member_joined.channel:
            joined = event.member_joined
            tags.append((event.tenant_id, joined.member.id, f"渠道:{joined.channel}"))
        elif kind == "order_placed" and event.order_placed.member.id:
            tags.append((event.tenant_id, event.order_placed.member.id, PURCHASED))
    return tags


async def add_tags(profiles: AsyncCollection[Document], tags: Iterable[Tag]) -> None:
    """Tags added to members' profiles in one request, making a profile not made yet: the
    tags of replies are given by a consumer of their own, which may come first."""
    updates = [
        UpdateOne(
            {"_id": f"{t}:{m}"},
            {"$addToSet": {"tags": tag}, "$setOnInsert": {"tenant_id": t, "member_id": m}},
            upsert=True,
        )
        for t, m, tag in sorted(set(tags))
    ]
    if updates:
        await profiles.bulk_write(updates, ordered=False)
