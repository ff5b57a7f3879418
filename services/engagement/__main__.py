"""Engagement: `python -m services.engagement`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from services.engagement import api, grpc_api, points
from services.engagement.activity import PROFILES, activity_updates
from services.engagement.autoreplies import AutoReplies
from services.engagement.checkins import Checkins
from services.engagement.operations import Operations
from services.engagement.points import Points
from services.engagement.purchases import Purchases
from services.engagement.settings import SETTINGS, TenantSettings
from services.runtime.consumer import Record
from services.runtime.envelope import Event, events_consumer
from services.runtime.service import Runtime, ServiceParts, run
from services.runtime.store import write_latest


def build(rt: Runtime) -> ServiceParts:
    ledger = Points(rt.store)
    configured = TenantSettings(rt.store[SETTINGS])
    checkins = Checkins(rt.store, ledger, rt.producer, rt.settings, configured)
    purchases = Purchases(rt.store, configured)
    autoreplies = AutoReplies(rt.store, rt.producer, rt.settings, configured)

    async def engage(records: Sequence[Record[Event]]) -> None:
        events = [r.value for r in records]

        async def profile() -> None:
            # Activity first: a new member's profile is made by it, the orders add to it.
            await write_latest(rt.store[PROFILES], activity_updates(events))
            await purchases.handle(events)

        said = [
            e
            for e in events
            if e.WhichOneof("payload") == "message_posted" and e.message_posted.member.id
        ]
        _, _, tags = await asyncio.gather(
            profile(), checkins.handle(said), autoreplies.handle(said)
        )
        if tags:
            await rt.store[PROFILES].bulk_write(tags, ordered=False)

    ops = Operations(ledger, configured, rt.store[PROFILES], autoreplies)
    return ServiceParts(
        indexes=points.INDEXES,
        routers=[api.router],
        provides=[ops],
        grpc=[grpc_api.service(ops, rt.auth)],
        consumers=[events_consumer("engagement", rt.settings, engage)],
    )


if __name__ == "__main__":
    run("engagement", build)
