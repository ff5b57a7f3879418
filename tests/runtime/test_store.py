"""Store helpers against the real MongoDB-protocol server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from services.runtime.instants import stamp
from services.runtime.store import LatestWins, changes, client, write_latest, write_when_changed
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


def _seen(minutes: float, **fields: object) -> LatestWins:
    return LatestWins("m-1", "seen_at", T0 + timedelta(minutes=minutes), fields, {"tags": []})


def test_an_update_is_worth_writing_when_it_changes_a_field_or_moves_the_clock_a_grain() -> None:
    doc = {"_id": "m-1", "seen_at": stamp(T0), "group": "g-1"}
    grain = timedelta(minutes=1)
    assert not changes(doc, _seen(0.5, group="g-1"), grain)
    assert changes(doc, _seen(0.5, group="g-2"), grain)
    assert changes(doc, _seen(1, group="g-1"), grain)
    assert not changes(doc, _seen(-5, group="g-2"), grain)  # older than what is there
    assert changes({"_id": "m-1"}, _seen(0, group="g-1"), grain)  # never written by the clock


async def test_write_when_changed_inserts_new_documents_and_skips_what_changes_nothing(
    stack: Stack,
) -> None:
    mongo = client(stack.mongo)
    collection = mongo["shequn_test"][f"changed_{uuid.uuid4().hex}"]
    grain = timedelta(minutes=1)
    try:
        await write_when_changed(
            collection, [_seen(0, group="g-1"), _seen(0.1, group="g-1")], grain
        )
        first = await collection.find_one({"_id": "m-1"})
        await write_when_changed(collection, [_seen(0.5, group="g-1")], grain)
        unchanged = await collection.find_one({"_id": "m-1"})
        await write_when_changed(collection, [_seen(0.6, group="g-2")], grain)
        moved = await collection.find_one({"_id": "m-1"})
        await write_when_changed(collection, [_seen(2, group="g-2"), _seen(-3, group="g-9")], grain)
        later = await collection.find_one({"_id": "m-1"})
    finally:
        await mongo.close()
    assert first == {"_id": "m-1", "tags": [], "group": "g-1", "seen_at": stamp(_seen(0.1).at)}
    assert unchanged == first
    assert moved is not None and moved["group"] == "g-2"
    assert later == {**moved, "seen_at": stamp(_seen(2).at)}


async def test_write_when_changed_loses_nothing_to_a_replica_inserting_the_same_document(
    stack: Stack,
) -> None:
    mongo = client(stack.mongo)
    collection = mongo["shequn_test"][f"changed_{uuid.uuid4().hex}"]
    grain = timedelta(minutes=1)
    try:
        # Both read nothing, both insert: one collides and writes as an update instead.
        await asyncio.gather(
            write_when_changed(collection, [_seen(1, group="g-new")], grain),
            write_when_changed(collection, [_seen(0, group="g-old")], grain),
        )
        doc = await collection.find_one({"_id": "m-1"})
    finally:
        await mongo.close()
    assert doc == {"_id": "m-1", "tags": [], "group": "g-new", "seen_at": stamp(_seen(1).at)}
