"""The consumer loop against the real broker: dead-lettering, retries, the stop limit and
commits. Each test has its own topics and consumer group."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import TopicAuthorizationFailedError
from prometheus_client import REGISTRY
from pymongo.errors import OperationFailure

from services.runtime.bus import Outgoing, Producer, ensure_topics
from services.runtime.consumer import (
    ConsumerLoop,
    ConsumerSpec,
    Record,
    TooManyDeadLetters,
    _Rebalance,
)
from services.runtime.settings import Settings
from tests.conftest import Stack
from tests.kafka import read_topic
from tests.waiting import eventually


def _settings(stack: Stack, **overrides: object) -> Settings:
    prefix = f"test-{uuid.uuid4().hex[:8]}."
    return Settings(
        kafka_bootstrap=stack.kafka,
        mongo_url=stack.mongo,
        kafka_partitions=1,
        **{
            "topic_events": f"{prefix}events",
            "consumer_group_prefix": prefix,
            "dlq_topic_prefix": f"{prefix}dlq.",
            "retry_backoff_ms": 10,
            **overrides,
        },  # type: ignore[arg-type]
    )


async def _produce(settings: Settings, values: list[bytes]) -> None:
    producer = Producer(settings)
    await producer.start()
    try:
        await producer.send_many(Outgoing(settings.topic_events, b"k", v) for v in values)
    finally:
        await producer.stop()


class Recorder:
    """A handler that records what it handled, always fails on the values in `poison`, hangs
    on the values in `hang` (a process dying mid-batch) and, while `outage` is set, fails as a
    handler does when its database is unreachable."""

    def __init__(self, poison: set[bytes], hang: set[bytes] | None = None) -> None:
        self.poison = poison
        self.hang = hang or set()
        self.outage = False
        # What each try raises in turn while `outage` is set.
        self.outage_errors: list[Exception] = [ConnectionRefusedError("database unreachable")]
        self.tries = 0
        self.handled: list[bytes] = []

    async def __call__(self, records: Sequence[Record[bytes]]) -> None:
        if self.outage:
            self.tries += 1
            raise self.outage_errors[self.tries % len(self.outage_errors)]
        if any(r.value in self.poison for r in records):
            raise ValueError("cannot handle " + ", ".join(r.value.decode() for r in records))
        if any(r.value in self.hang for r in records):
            await asyncio.Event().wait()
        self.handled.extend(r.value for r in records)

    async def count(self) -> int:
        return len(self.handled)


async def _run(loop: ConsumerLoop[bytes], until: asyncio.Event) -> asyncio.Task[None]:
    return asyncio.create_task(loop.run(until))


async def test_a_message_that_always_fails_is_dead_lettered_and_the_rest_is_handled(
    stack: Stack,
) -> None:
    settings = _settings(stack)
    await ensure_topics(settings, [settings.topic_events, settings.dlq_topic("recorder")])
    values = [f"m{i}".encode() for i in range(10)]
    await _produce(settings, values)
    recorder = Recorder(poison={b"m4", b"m7"})
    spec = ConsumerSpec("recorder", [settings.topic_events], lambda raw: raw, recorder)
    producer = Producer(settings)
    await producer.start()
    stop = asyncio.Event()
    task = await _run(ConsumerLoop(spec, settings, producer), stop)
    try:
        await eventually(recorder.count, lambda n: n == 8, within=60)
        dead = await read_topic(stack.kafka, settings.dlq_topic("recorder"), 2)
    finally:
        stop.set()
        await task
        await producer.stop()
    assert recorder.handled == [v for v in values if v not in (b"m4", b"m7")]
    assert [d.value for d in dead] == [b"m4", b"m7"]
    headers = dict(dead[0].headers)
    assert headers["dlq.reason"] == b"failed"
    assert b"cannot handle m4" in headers["dlq.error"]
    assert headers["dlq.consumer"] == b"recorder"


async def test_committed_work_is_not_read_again_and_uncommitted_work_is(stack: Stack) -> None:
    settings = _settings(stack, bulk_batch_max_messages=1)
    await ensure_topics(settings, [settings.topic_events])
    await _produce(settings, [b"a", b"b", b"c"])
    producer = Producer(settings)
    await producer.start()
    # The first consumer handles a and b, then dies while handling c: c is never committed.
    first = Recorder(poison=set(), hang={b"c"})
    spec = ConsumerSpec("commits", [settings.topic_events], lambda raw: raw, first)
    task = await _run(ConsumerLoop(spec, settings, producer), asyncio.Event())
    await eventually(first.count, lambda n: n == 2, within=60)
    await asyncio.sleep(0.5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    await _produce(settings, [b"d"])
    second = Recorder(poison=set())
    spec = ConsumerSpec("commits", [settings.topic_events], lambda raw: raw, second)
    stop = asyncio.Event()
    task = await _run(ConsumerLoop(spec, settings, producer), stop)
    try:
        await eventually(second.count, lambda n: n >= 2, within=60)
    finally:
        stop.set()
        await task
        await producer.stop()
    assert first.handled == [b"a", b"b"]
    assert second.handled == [b"c", b"d"]


async def test_partitions_taken_away_drop_the_memory_state_kept_for_them(stack: Stack) -> None:
    """What the rebalance listener does when the group moves partitions to another member
    (calling it directly spares the group's 5-second pauses)."""
    settings = _settings(stack)
    revoked: list[bool] = []
    spec = ConsumerSpec(
        "revoke", [settings.topic_events], lambda raw: raw, Recorder(poison=set()),
        revoked=lambda _: revoked.append(True),
    )  # fmt: skip
    listener = _Rebalance(ConsumerLoop(spec, settings, Producer(settings)))
    await listener.on_partitions_revoked([])
    assert revoked == []
    await listener.on_partitions_revoked([TopicPartition(settings.topic_events, 0)])
    assert revoked == [True]


async def test_an_outage_is_waited_out_and_nothing_is_dead_lettered(stack: Stack) -> None:
    # Two tries each: were the errors taken for the messages' fault, both would be dead-lettered
    # by the 6th (the pair twice, then each alone twice).
    consumer, settings = "outage", _settings(stack, retry_attempts=2)
    await ensure_topics(settings, [settings.topic_events, settings.dlq_topic(consumer)])
    recorder = Recorder(poison=set())
    recorder.outage = True
    recorder.outage_errors = [
        ConnectionRefusedError("database unreachable"),
        # Access refused while a password is rotated, or an ACL or a role is missing: the
        # configuration's fault, never the message's.
        OperationFailure("Authentication failed.", code=18),
        OperationFailure("not authorized on shequn_x", code=13),
        TopicAuthorizationFailedError(),
    ]
    spec = ConsumerSpec(consumer, [settings.topic_events], lambda raw: raw, recorder)
    producer = Producer(settings)
    await producer.start()
    stop = asyncio.Event()
    loop = ConsumerLoop(spec, settings, producer)
    task = await _run(loop, stop)
    try:
        await _produce(settings, [b"p", b"q"])
        await eventually(lambda: _sample(consumer, "shequn_handler_errors_total"), lambda n: n >= 8)
        recorder.outage = False
        await eventually(recorder.count, lambda n: n == 2, within=60)
    finally:
        stop.set()
        await task
        await producer.stop()
    assert await _sample(consumer, "shequn_dead_lettered_total", reason="failed") == 0


async def _sample(consumer: str, name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"consumer": consumer, **labels}) or 0.0


async def test_the_consumer_stops_instead_of_dead_lettering_everything(stack: Stack) -> None:
    settings = _settings(stack, dlq_max_consecutive=3, bulk_batch_max_messages=1)
    await ensure_topics(settings, [settings.topic_events, settings.dlq_topic("broken")])
    values = [f"x{i}".encode() for i in range(6)]
    await _produce(settings, values)
    broken = Recorder(poison=set(values))
    spec = ConsumerSpec("broken", [settings.topic_events], lambda raw: raw, broken)
    producer = Producer(settings)
    await producer.start()
    try:
        with pytest.raises(TooManyDeadLetters):
            await asyncio.wait_for(ConsumerLoop(spec, settings, producer).run(asyncio.Event()), 60)
    finally:
        await producer.stop()
    assert broken.handled == []
