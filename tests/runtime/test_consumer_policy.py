"""The consumer loop's policy, as the architecture says (after Arroyo), against the real broker:
only an InvalidMessage is dead-lettered without retries; other failures are retried with growing
pauses, then the batch is split to find what fails alone; limits on dead-lettering in a row and
as a share of recent messages stop the consumer; a stop is honoured during an outage; a long
batch keeps the consumer in its group; held offsets are not committed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition

from services.runtime.bus import Producer, ensure_topics
from services.runtime.consumer import (
    ConsumerLoop,
    ConsumerSpec,
    Holds,
    InvalidMessage,
    Record,
    TooManyDeadLetters,
)
from services.runtime.settings import Settings
from tests.conftest import Stack
from tests.kafka import read_topic
from tests.runtime.test_consumer import _produce, _settings
from tests.waiting import eventually


class Calls:
    """A handler that records every call; values in `invalid` raise InvalidMessage, in
    `poison` ValueError; while `outage` is set, it fails as when the database is down."""

    def __init__(self, invalid: set[bytes] = set(), poison: set[bytes] = set()) -> None:  # noqa: B006
        self.invalid, self.poison = invalid, poison
        self.outage = False
        self.calls: list[list[bytes]] = []
        self.handled: list[bytes] = []
        self.slow_once = 0.0

    async def __call__(self, records: Sequence[Record[bytes]]) -> None:
        values = [r.value for r in records]
        self.calls.append(values)
        if self.outage:
            raise ConnectionRefusedError("database unreachable")
        if self.invalid & set(values):
            raise InvalidMessage("not a message anybody could handle")
        if self.poison & set(values):
            raise ValueError("cannot handle it")
        if self.slow_once:
            seconds, self.slow_once = self.slow_once, 0.0
            await asyncio.sleep(seconds)
        self.handled.extend(values)

    async def count(self) -> int:
        return len(self.handled)


@dataclass
class Running:
    loop: ConsumerLoop[bytes]
    task: asyncio.Task[None]
    stop: asyncio.Event


@contextlib.asynccontextmanager
async def consuming(
    settings: Settings, name: str, handler: Calls, **spec: object
) -> AsyncIterator[Running]:
    """A consumer loop running `handler`; stopped (the way SIGTERM stops it) on leaving."""
    await ensure_topics(settings, [settings.topic_events, settings.dlq_topic(name)])
    producer = Producer(settings)
    await producer.start()
    consumer_spec = ConsumerSpec(name, [settings.topic_events], lambda raw: raw, handler, **spec)  # type: ignore[arg-type]
    loop, stop = ConsumerLoop(consumer_spec, settings, producer), asyncio.Event()
    running = Running(loop, asyncio.create_task(loop.run(stop)), stop)
    try:
        yield running
    finally:
        stop.set()
        if not running.task.done():
            await running.task
        await producer.stop()


async def test_an_invalid_message_is_dead_lettered_without_retries(stack: Stack) -> None:
    settings = _settings(stack, retry_attempts=3)
    await _produce(settings, [b"ok", b"bad"])
    handler = Calls(invalid={b"bad"})
    async with consuming(settings, "invalid", handler):
        [dead] = await read_topic(stack.kafka, settings.dlq_topic("invalid"), 1)
        await eventually(handler.count, lambda n: n == 1)
    assert dead.value == b"bad" and dict(dead.headers)["dlq.reason"] == b"invalid"
    # The pair once, then each alone once: never tried again.
    assert [c for c in handler.calls if b"bad" in c] == [[b"ok", b"bad"], [b"bad"]]


async def test_a_failing_batch_is_split_to_find_the_record_that_fails_alone(stack: Stack) -> None:
    settings = _settings(stack, retry_attempts=2, retry_backoff_ms=1)
    values = [f"v{i:02d}".encode() for i in range(64)]
    await _produce(settings, values)
    handler = Calls(poison={b"v37"})
    async with consuming(settings, "split", handler):
        [dead] = await read_topic(stack.kafka, settings.dlq_topic("split"), 1)
        await eventually(handler.count, lambda n: n == 63)
    assert dead.value == b"v37" and dict(dead.headers)["dlq.reason"] == b"failed"
    assert handler.handled == [v for v in values if v != b"v37"], "in order, all but one"
    # Halving: 2 tries at each of 7 sizes (64 … 1) and the halves that pass; one by one would
    # have been 64 calls and more.
    assert len(handler.calls) <= 7 * 2 + 6 + 1


async def test_too_large_a_share_dead_lettered_stops_the_consumer(stack: Stack) -> None:
    """Two in three messages are invalid: never 50 in a row, but a bad deploy all the same."""
    settings = _settings(stack, bulk_batch_max_messages=30)
    values = [f"{'ok' if i % 3 == 0 else 'bad'}{i}".encode() for i in range(600)]
    await _produce(settings, values)
    handler = Calls(invalid={v for v in values if v.startswith(b"bad")})
    async with consuming(settings, "ratio", handler) as running:
        with pytest.raises(TooManyDeadLetters, match="of the last"):
            await asyncio.wait_for(running.task, 60)
    assert len(handler.handled) < 100, "stopped long before draining the topic"


async def test_an_outage_is_waited_out_with_growing_pauses_and_a_stop_ends_the_wait(
    stack: Stack,
) -> None:
    settings = _settings(stack, retry_backoff_ms=100, outage_retry_seconds=300)
    await _produce(settings, [b"p"])
    handler = Calls()
    handler.outage = True
    async with consuming(settings, "outage-stop", handler) as running:
        await eventually(lambda: _calls(handler), lambda n: n >= 1, within=60)
        first = time.monotonic()
        await asyncio.sleep(4)
        tries = len(handler.calls)
        # 0.2, 0.3, 0.5, 0.9, 1.7 s …: about 5 tries in 4 s, not one every 0.2 s.
        assert tries <= 7, f"{tries} tries in 4 s"
        running.stop.set()  # SIGTERM in the middle of the outage
        await asyncio.wait_for(running.task, 5)
        assert time.monotonic() - first < 9
    assert (
        handler.handled == []
        and running.loop.committed.get(TopicPartition(settings.topic_events, 0)) is None
    )


async def _calls(handler: Calls) -> int:
    return len(handler.calls)


async def test_a_batch_longer_than_the_poll_interval_keeps_the_consumer_in_its_group(
    stack: Stack,
) -> None:
    """Kafka counts a consumer that does not poll for max_poll_interval_ms as gone and gives
    its partitions away: the batch was then read and handled again."""
    settings = _settings(stack, kafka_max_poll_interval_ms=2000)
    await _produce(settings, [b"a", b"b"])
    handler = Calls()
    handler.slow_once = 7.0
    tp = TopicPartition(settings.topic_events, 0)
    async with consuming(settings, "long", handler) as running:
        await eventually(lambda: _committed(running.loop, tp), lambda n: n == 2, within=60)
        await _produce(settings, [b"c"])
        await eventually(lambda: _committed(running.loop, tp), lambda n: n == 3, within=30)
    assert handler.handled == [b"a", b"b", b"c"], "nothing handled twice"


async def _committed(loop: ConsumerLoop[bytes], tp: TopicPartition) -> int:
    return loop.committed.get(tp, 0)


async def test_offsets_held_by_the_handler_are_not_committed_until_released(
    stack: Stack,
) -> None:
    settings = _settings(stack)
    holds = Holds(limit=100)
    tp = TopicPartition(settings.topic_events, 0)

    class Holding(Calls):
        async def __call__(self, records: Sequence[Record[bytes]]) -> None:
            await super().__call__(records)
            for r in records:
                if r.value == b"later":
                    holds.hold(tp, r.offset)

    await _produce(settings, [b"now", b"later", b"after"])
    handler = Holding()
    async with consuming(settings, "holds", handler, holds=holds) as running:
        await eventually(handler.count, lambda n: n == 3, within=60)
        await asyncio.sleep(0.5)
        assert running.loop.committed.get(tp) == 1, "up to the held offset, not past it"
        holds.release(tp, 1)
        await eventually(lambda: _committed(running.loop, tp), lambda n: n == 3)
