"""A consumer that rolls a day up gathers its batch from several fetches for up to its linger,
so a group's day is written once for many more events; the others take what one fetch holds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from services.runtime.bus import Outgoing, Producer, ensure_topics
from services.runtime.consumer import ConsumerLoop, ConsumerSpec, Pace, Record
from tests.conftest import Stack
from tests.runtime.test_consumer import _settings
from tests.waiting import eventually


async def _batches(stack: Stack, pace: Pace) -> list[int]:
    """Sizes of the batches a consumer of `pace` handles of 5 sends of 10, 200 ms apart."""
    settings = _settings(stack, rollup_batch_linger_ms=1500)
    await ensure_topics(settings, [settings.topic_events])
    sizes: list[int] = []

    async def handle(records: Sequence[Record[bytes]]) -> None:
        sizes.append(len(records))

    spec = ConsumerSpec("linger", [settings.topic_events], lambda raw: raw, handle, pace=pace)
    producer = Producer(settings)
    await producer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(ConsumerLoop(spec, settings, producer).run(stop))
    try:
        await producer.send_many([Outgoing(settings.topic_events, b"k", b"warm-up")])
        await eventually(lambda: _sum(sizes), lambda n: n == 1, within=60)
        sizes.clear()
        for send in range(5):
            await producer.send_many(
                Outgoing(settings.topic_events, b"k", f"{send}-{i}".encode()) for i in range(10)
            )
            await asyncio.sleep(0.2)
        await eventually(lambda: _sum(sizes), lambda n: n == 50, within=60)
    finally:
        stop.set()
        await task
        await producer.stop()
    return sizes


async def _sum(sizes: list[int]) -> int:
    return sum(sizes)


async def test_a_rollup_gathers_several_fetches_into_one_batch(stack: Stack) -> None:
    assert await _batches(stack, Pace.ROLLS_UP) == [50]


async def test_a_consumer_of_replies_takes_what_each_fetch_holds(stack: Stack) -> None:
    assert len(await _batches(stack, Pace.REPLIES)) >= 2
