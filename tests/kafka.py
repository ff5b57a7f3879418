"""Reading and writing topics directly, for tests that look under the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.waiting import eventually


async def read_topic(
    bootstrap: str, topic: str, count: int, keep: Callable[[Any], bool] = lambda _: True
) -> list[Any]:
    """The first `count` records of `topic` (from the start) that `keep` accepts."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,  # every partition, without a group to join (seconds on this broker)
        enable_auto_commit=False,
    )
    found: list[Any] = []

    async def poll() -> int:
        for batch in (await consumer.getmany(timeout_ms=500)).values():
            found.extend(m for m in batch if keep(m))
        return len(found)

    await consumer.start()
    try:
        await eventually(poll, lambda n: n >= count)
    finally:
        await consumer.stop()
    return found[:count]


async def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic` so far, from the start."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
        enable_auto_commit=False,
    )  # fmt: skip
    found: list[Any] = []
    await consumer.start()
    try:
        await eventually(lambda: _assigned(consumer), bool)
        ends = await consumer.end_offsets(list(consumer.assignment()))

        async def caught_up() -> bool:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(batch)
            return all([await consumer.position(tp) >= end for tp, end in ends.items()])

        await eventually(caught_up, bool)
    finally:
        await consumer.stop()
    return found


async def _assigned(consumer: AIOKafkaConsumer) -> bool:
    return bool(consumer.assignment())


async def produce(bootstrap: str, messages: list[tuple[str, bytes | None, bytes]]) -> None:
    """Write (topic, key, value) messages as they are."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for topic, key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def event_id_of(raw: bytes) -> str | None:
    """The event id of a message on the events topic; None for one that is not an Event (the
    dead-letter tests put such messages there on purpose)."""
    from google.protobuf.message import DecodeError

    from services.gen.shequn.v1 import events_pb2

    try:
        return events_pb2.Event.FromString(raw).event_id
    except DecodeError:
        return None
