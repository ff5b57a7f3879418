"""Daily counters against the real MongoDB-protocol server: each event counted once, whether it
is read again or comes twice, a day's first of something once in whichever partition, and a
counter document that does not grow with what it has counted."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from services.analytics.counters import (
    CLAIMS,
    GROUP_DAILY,
    TENANT_DAILY,
    TOKENS_KEPT,
    Counters,
    never_applied,
)
from services.analytics.counting import Contribution
from services.runtime.store import Store
from tests.conftest import Stack

DOC = "t:g:2026-11-22"
WEEK = timedelta(days=7)


FIELDS: dict[str, str | int] = {"tenant_id": "t", "group_id": "g", "date": "2026-11-22"}


def c(event_id: str, poster: str = "u1") -> Contribution:
    return Contribution(DOC, f"t:{event_id}", FIELDS, {"messages": 1}, poster)


def group_days(store: Store, consumer: str = "events") -> Counters:
    return Counters(store, GROUP_DAILY, consumer, WEEK, posters=True)


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[Store]:
    store = Store(stack.mongo, f"counters_{uuid.uuid4().hex[:8]}")
    yield store
    await store.client.drop_database(store.db.name)
    await store.close()


async def _doc(store: Store) -> dict[str, object]:
    doc = await store[GROUP_DAILY].find_one({"_id": DOC})
    assert doc is not None
    return doc


async def test_events_read_again_or_twice_count_once(store: Store) -> None:
    counters = group_days(store)
    assert await counters.absorb([c("e1"), c("e2", "u2"), c("e2", "u2")]) == 2
    assert await counters.absorb([c("e2", "u2"), c("e3")]) == 1, "read again, another batch"
    assert await counters.absorb([c("e1")]) == 0
    doc = await _doc(store)
    assert doc["messages"] == 3
    assert sorted(doc["posters"]) == ["u1", "u2"]  # type: ignore[call-overload]


async def test_posters_count_on_a_day_whose_first_event_had_no_poster(store: Store) -> None:
    counters = group_days(store)
    joined = Contribution(DOC, "t:j1", FIELDS, {"joins": 1})
    await counters.absorb([joined])
    await counters.absorb([c("e1"), c("e2", "u2")])
    assert sorted((await _doc(store))["posters"]) == ["u1", "u2"]  # type: ignore[call-overload]


async def test_an_event_claimed_by_a_call_that_died_before_its_counters_is_counted(
    store: Store,
) -> None:
    counters = group_days(store)
    await counters.absorb([c("e0")])
    # The claim went in under a token of its own, then the process died.
    await store[CLAIMS].insert_one({"_id": "t:e1", "token": time.time_ns()})
    assert await counters.absorb([c("e1")]) == 1
    assert await counters.absorb([c("e1")]) == 0, "claimed again, under the token that counted"
    assert (await _doc(store))["messages"] == 2


async def test_consumers_keep_their_own_tokens(store: Store) -> None:
    await group_days(store).absorb([c("e1")])
    violation = Contribution(DOC, "t:decision:d1", FIELDS, {"violations": 1})
    assert await group_days(store, "decisions").absorb([violation]) == 1
    doc = await _doc(store)
    assert (doc["messages"], doc["violations"]) == (1, 1)
    assert len(doc["applied_events"]) == len(doc["applied_decisions"]) == 1  # type: ignore[arg-type]


async def test_a_counter_document_does_not_grow_with_the_events_it_counts(store: Store) -> None:
    counters = group_days(store)
    for batch in range(TOKENS_KEPT + 4):
        await counters.absorb([c(f"e{batch}-{i}", f"u{i % 5}") for i in range(50)])
    doc = await _doc(store)
    assert doc["messages"] == (TOKENS_KEPT + 4) * 50
    assert sorted(doc) == [
        "_id", "applied_events", "date", "group_id", "messages", "posters", "tenant_id",
    ]  # fmt: skip
    assert len(doc["applied_events"]) == TOKENS_KEPT  # type: ignore[arg-type]


def _first_post(partition: int) -> Contribution:
    doc_id = f"t:2026-11-22:{partition:03d}"
    fields: dict[str, str | int] = {"tenant_id": "t", "date": "2026-11-22", "partition": partition}
    return Contribution(
        doc_id, "t:posted:2026-11-22:u1", fields, {"members_posted": 1}, lasting=True
    )


async def _posted(store: Store) -> int:
    return sum([d.get("members_posted", 0) async for d in store[TENANT_DAILY].find({})])


async def test_a_days_first_is_counted_once_in_whichever_partition(store: Store) -> None:
    tenant_days = Counters(store, TENANT_DAILY, "events", WEEK)
    assert await tenant_days.absorb([_first_post(1), _first_post(2)]) == 1
    assert await tenant_days.absorb([_first_post(3)]) == 0, "remembered by the process"
    restarted = Counters(store, TENANT_DAILY, "events", WEEK)
    assert await restarted.absorb([_first_post(4), _first_post(1)]) == 0, "claimed before"
    assert await _posted(store) == 1


async def test_a_days_first_claimed_by_a_call_that_died_is_counted_in_the_next_partition(
    store: Store,
) -> None:
    tenant_days = Counters(store, TENANT_DAILY, "events", WEEK)
    # Partition 1's call claimed it, then the process died before its counters.
    claim = {"_id": "t:posted:2026-11-22:u1", "token": time.time_ns(), "doc": "t:2026-11-22:001"}
    await store[CLAIMS].insert_one(claim)
    assert await tenant_days.absorb([_first_post(2)]) == 1
    assert await Counters(store, TENANT_DAILY, "events", WEEK).absorb([_first_post(1)]) == 0
    assert await _posted(store) == 1
    counted = await store[TENANT_DAILY].find_one({"_id": "t:2026-11-22:002"})
    assert counted is not None and counted["members_posted"] == 1
    assert "posters" not in counted


def test_which_tokens_never_reached_their_document() -> None:
    full = list(range(100, 100 + TOKENS_KEPT))
    assert not never_applied(105, full), "kept: it got there"
    assert never_applied(999, full), "newer than the oldest kept, yet not there"
    assert not never_applied(5, full), "older than what is kept: counted long ago"
    assert never_applied(5, [100, 101]), "nothing was pushed out yet"
