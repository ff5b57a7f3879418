"""Which consumers fetch at once: those on the path from a message to the platform's answer
(moderation, delivery). The others wait for fuller fetches and take larger batches, which cost
the broker and them less per event; those keeping a day's counters and profiles wait longest."""

from __future__ import annotations

import importlib

from services.runtime.auth import Authenticator
from services.runtime.bus import Producer
from services.runtime.consumer import Fetching, fetching
from services.runtime.service import Runtime
from services.runtime.settings import Settings
from services.runtime.store import Store

SERVICES = ("ingestion", "moderation", "engagement", "campaign", "analytics")


async def test_the_reaction_path_fetches_at_once_and_rollups_wait_longest() -> None:
    settings = Settings(
        kafka_fetch_max_wait_ms=20,
        kafka_bulk_fetch_max_wait_ms=200,
        batch_max_messages=500,
        bulk_batch_max_messages=2000,
        rollup_batch_linger_ms=2000,
        rollup_batch_max_messages=5000,
    )
    store = Store(settings.mongo_url, "shequn_fetch_waits")  # never reached
    rt = Runtime(settings, store, Producer(settings), Authenticator(store.client, "shequn_", 30))
    waits = {}
    for service in SERVICES:
        parts = importlib.import_module(f"services.{service}.__main__").build(rt)
        waits.update({c.name: fetching(c, settings) for c in parts.consumers})
        for stop in parts.on_stop:
            await stop()
    await rt.producer.stop()
    await store.close()
    at_once, fuller, fullest = Fetching(20, 500), Fetching(200, 2000), Fetching(200, 5000, 2000)
    assert waits == {
        "moderation": at_once, "ingestion-delivery": at_once,
        "ingestion": fuller, "engagement": fuller, "campaign": fullest,
        "analytics-decisions": fuller, "engagement-decisions": fuller,
        "engagement-results": fuller, "campaign-results": fuller, "campaign-decisions": fuller,
        "analytics": fullest, "engagement-profiles": fullest,
    }  # fmt: skip
