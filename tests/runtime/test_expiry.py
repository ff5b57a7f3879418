"""Expiry without TTL indexes: NX-27017 purges a TTL collection on every read with a scan of
the whole collection, so a lookup by `_id` there costs more with every document stored. The
runtime's sweep deletes by a range of a single-field index instead."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, IndexModel

from services.runtime.store import DELETE_AFTER, Indexes, Store, kept_for
from tests.conftest import Stack

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


async def test_the_sweep_deletes_what_has_expired_and_nothing_else(stack: Stack) -> None:
    store = Store(stack.mongo, f"expiry_{uuid.uuid4().hex[:8]}")
    indexes = [Indexes("kept", expiring=True), Indexes("plain")]
    try:
        await store.create_indexes(indexes)
        await store["kept"].insert_many(
            [
                {"_id": "gone", DELETE_AFTER: kept_for(timedelta(seconds=-1), NOW)},
                {"_id": "stays", DELETE_AFTER: kept_for(timedelta(days=7), NOW)},
                {"_id": "no expiry"},
            ]
        )
        await store["plain"].insert_one({"_id": "plain", DELETE_AFTER: 0})
        assert await store.sweep_expired(indexes, NOW) == 1
        assert await store.sweep_expired(indexes, NOW) == 0
        left = {d["_id"] async for d in store["kept"].find({})}
        plain = await store["plain"].count_documents({})
        names = [i["key"] async for i in await store["kept"].list_indexes()]
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()
    assert left == {"stays", "no expiry"}
    assert plain == 1, "only collections declared expiring are swept"
    assert {DELETE_AFTER: 1} in [dict(k) for k in names]


async def test_ttl_indexes_of_earlier_versions_are_dropped(stack: Stack) -> None:
    store = Store(stack.mongo, f"expiry_{uuid.uuid4().hex[:8]}")
    try:
        ttl = IndexModel([("received_at", ASCENDING)], expireAfterSeconds=86400)
        await store["events"].create_indexes([ttl])
        await store.create_indexes([Indexes("events", expiring=True)])
        found = [i async for i in await store["events"].list_indexes()]
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()
    assert not [i for i in found if "expireAfterSeconds" in i]


async def test_no_service_keeps_a_ttl_index(stack: Stack) -> None:
    for service in ("ingestion", "moderation", "engagement", "campaign", "analytics"):
        store = Store(stack.mongo_of(service), f"shequn_{service}")
        try:
            ttl = [
                f"{name}.{index['name']}"
                for name in await store.db.list_collection_names()
                async for index in await store[name].list_indexes()
                if "expireAfterSeconds" in index
            ]
        finally:
            await store.close()
        assert not ttl, f"{service}: every read of these collections scans them: {ttl}"
