"""Coalesced calls, without I/O: concurrent callers share one round, each gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from services.runtime.coalesce import Coalesced


async def test_concurrent_callers_share_one_round_and_get_their_own_answers() -> None:
    rounds: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        rounds.append(items)
        await asyncio.sleep(0.01)
        return [2 * i for i in items]

    doubled = Coalesced(double)
    assert await asyncio.gather(*(doubled(i) for i in range(5))) == [0, 2, 4, 6, 8]
    assert rounds == [[0, 1, 2, 3, 4]]
    # Callers that come while a round is on its way go together in the next.
    first = asyncio.create_task(doubled(10))
    await asyncio.sleep(0.001)
    later = [asyncio.create_task(doubled(i)) for i in (11, 12)]
    assert await asyncio.gather(first, *later) == [20, 22, 24]
    assert rounds[1:] == [[10], [11, 12]]


async def test_a_failed_round_fails_each_of_its_callers_and_not_the_next() -> None:
    calls = 0

    async def flaky(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return items

    echo = Coalesced(flaky)
    results = await asyncio.gather(echo("a"), echo("b"), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    assert await echo("c") == "c"


async def test_a_caller_that_gives_up_leaves_the_others_their_answers() -> None:
    async def slow(items: list[int]) -> list[int]:
        await asyncio.sleep(0.05)
        return items

    same = Coalesced(slow)
    impatient = asyncio.create_task(same(1))
    patient = asyncio.create_task(same(2))
    await asyncio.sleep(0.01)
    impatient.cancel()
    assert await patient == 2
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_with_a_linger_callers_arriving_one_by_one_go_together() -> None:
    rounds: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        rounds.append(items)
        return items

    async def one_by_one(together: Coalesced[int, int]) -> None:
        calls = []
        for n in range(4):
            calls.append(asyncio.create_task(together(n)))
            await asyncio.sleep(0.001)  # requests come a moment apart
        assert await asyncio.gather(*calls) == [0, 1, 2, 3]

    await one_by_one(Coalesced(run))
    assert len(rounds) == 4
    rounds.clear()
    await one_by_one(Coalesced(run, linger=0.05))
    assert rounds == [[0, 1, 2, 3]]
