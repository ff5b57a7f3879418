"""Store helpers against the real MongoDB-protocol server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.runtime.instants import stamp
from services.runtime.store import LatestWins, client, write_latest
from tests.conftest import Stack

T0 = datetime(2026, 11, 22, tzinfo=UTC)


async def test_latest_wins_ignores_older_and_repeated_updates(stack: Stack) -> None:
    mongo = client(stack.mongo)
    collection = mongo["shequn_test"][f"latest_{uuid.uuid4().hex}"]
    try:
        newer = LatestWins("m-1", "changed_at", T0 + timedelta(minutes=5), {"in_group": False})
        older = LatestWins("m-1", "changed_at", T0, {"in_group": True}, {"joined": True})
        await write_latest(collection, [newer])
        await write_latest(collection, [older, newer])
        doc = await collection.find_one({"_id": "m-1"})
    finally:
        await mongo.close()
    assert doc is not None
    assert not doc["in_group"]  # NX-27017 stores a $set False as 0; MongoDB keeps False
    assert doc["changed_at"] == stamp(T0 + timedelta(minutes=5))


async def test_latest_wins_applies_events_of_the_same_instant_in_order(stack: Stack) -> None:
    mongo = client(stack.mongo)
    collection = mongo["shequn_test"][f"latest_{uuid.uuid4().hex}"]
    try:
        join = LatestWins("m-1", "changed_at", T0, {"in_group": True})
        kick = LatestWins("m-1", "changed_at", T0, {"in_group": False})
        await write_latest(collection, [join])
        await write_latest(collection, [kick])
        doc = await collection.find_one({"_id": "m-1"})
    finally:
        await mongo.close()
    assert doc is not None and not doc["in_group"]


async def test_latest_wins_changes_only_its_own_document(stack: Stack) -> None:
    mongo = client(stack.mongo)
    collection = mongo["shequn_test"][f"latest_{uuid.uuid4().hex}"]
    try:
        await write_latest(collection, [LatestWins("g-1", "name_at", T0, {"name": "一群"})])
        await write_latest(collection, [LatestWins("g-2", "tags_at", T0, {"tags": ["vip"]})])
        docs = {d["_id"]: d async for d in collection.find()}
    finally:
        await mongo.close()
    assert "tags" not in docs["g-1"], "g-1 has no tags clock, yet is not g-2"
    assert docs["g-2"]["tags"] == ["vip"]
