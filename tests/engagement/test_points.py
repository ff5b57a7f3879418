"""The points ledger against the real MongoDB-protocol server: a source is booked once however
often it is applied, a balance never goes below zero, and a change interrupted between its
balance and its entry is completed, not repeated."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from services.engagement.points import BALANCES, LEDGER, Grant, Points, _change
from services.runtime.store import Store
from tests.conftest import Stack

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def grant(source: str, points: int, member: str = "u1", at: datetime = AT) -> Grant:
    return Grant("t", member, source, points, "test", at)


@pytest.fixture
async def ledger(stack: Stack) -> AsyncIterator[Points]:
    store = Store(stack.mongo_of("engagement"), f"points_{uuid.uuid4().hex[:8]}")
    await store[LEDGER].create_index("position")
    yield Points(store)
    await store.client.drop_database(store.db.name)
    await store.close()


async def test_the_same_sources_applied_again_are_booked_once(ledger: Points) -> None:
    batch = [grant("checkin:a", 10), grant("checkin:b", 5, "u2"), grant("grant:g1", 30)]
    first = await ledger.apply(batch)
    assert [(r.booked, r.balance) for r in first] == [(True, 10), (True, 5), (True, 40)]
    again = await ledger.apply([*batch, grant("checkin:a", 10)])  # redelivered, and twice
    assert all(r.booked for r in again)
    twice = await ledger.apply([grant("checkin:c", 1), grant("checkin:c", 1), grant("x:1", 2)])
    assert [r.balance for r in twice] == [41, 41, 43]
    assert await ledger.balance("t", "u1") == 43
    assert await ledger.ledger.count_documents({}) == 5


async def test_a_debit_the_balance_does_not_cover_is_refused_and_nothing_goes_negative(
    ledger: Points,
) -> None:
    [nothing] = await ledger.apply([grant("draw:1", -50)])
    assert (nothing.booked, nothing.balance) == (False, 0)
    assert await ledger.balances.count_documents({}) == 0, "a debit creates no balance"
    await ledger.apply([grant("grant:g1", 100)])
    results = await ledger.apply([grant("draw:2", -60), grant("draw:3", -60), grant("draw:4", -40)])
    assert [r.booked for r in results] == [True, False, True]
    assert await ledger.balance("t", "u1") == 0
    assert {d["source"] async for d in ledger.ledger.find({})} == {"grant:g1", "draw:2", "draw:4"}


async def test_concurrent_debits_take_exactly_what_the_balance_holds(ledger: Points) -> None:
    await ledger.apply([grant("grant:g1", 100)])
    results = await asyncio.gather(*(ledger.apply([grant(f"draw:{n}", -10)]) for n in range(40)))
    assert sum(r.booked for [r] in results) == 10
    assert await ledger.balance("t", "u1") == 0


async def test_a_change_interrupted_before_its_entry_is_completed_not_repeated(
    ledger: Points,
) -> None:
    # What a process that died between the two writes leaves: the balance changed, no entry.
    await ledger.balances.bulk_write([_change(grant("checkin:a", 10))])
    [result] = await ledger.apply([grant("checkin:a", 10)])
    assert (result.booked, result.balance) == (True, 10)
    assert await ledger.ledger.count_documents({"source": "checkin:a"}) == 1
    assert await ledger.balances.database[BALANCES].count_documents({}) == 1


async def test_a_members_entries_come_newest_first_a_page_at_a_time(ledger: Points) -> None:
    await ledger.apply([grant(f"grant:{n}", n + 1, at=AT + timedelta(minutes=n)) for n in range(5)])
    await ledger.apply([grant("grant:other", 7, member="u10")])  # a member id u1 begins
    page, cursor = await ledger.entries("t", "u1", 3, None)
    assert [e["points"] for e in page] == [5, 4, 3]
    rest, end = await ledger.entries("t", "u1", 3, cursor)
    assert [e["points"] for e in rest] == [2, 1] and end is None
