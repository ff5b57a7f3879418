"""The delivery's handler and steps against the real broker and database, with an in-process
platform: results that could not be written are written later, never lost; records of a
partition taken away while their batch was in hand are left to its next owner."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition

from services.gen.shequn.v1 import actions_pb2, common_pb2
from services.ingestion.adapters import DELIVERED, Adapter, Outcome
from services.ingestion.delivery import DELIVERIES, Delivery
from services.ingestion.timeline import TIMELINE
from services.runtime.bus import Outgoing, Producer, ensure_topics
from services.runtime.consumer import Record
from services.runtime.settings import Settings
from services.runtime.store import Store
from tests.conftest import Stack
from tests.kafka import read_topic
from tests.waiting import eventually


class Platform:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def wait(self, action: actions_pb2.Action) -> float:
        return 0.0

    async def deliver(self, action: actions_pb2.Action) -> Outcome:
        self.calls.append(action.action_id)
        return DELIVERED


class FlakyProducer(Producer):
    """Fails the first send of results, as when the broker is briefly away; waits while `slow`
    is set, as a busy broker does."""

    failures = 1
    slow: asyncio.Event | None = None

    async def send_many(self, messages: Iterable[Outgoing]) -> None:
        if self.slow is not None:
            await self.slow.wait()
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker away")
        await super().send_many(messages)


@dataclass
class Parts:
    delivery: Delivery
    platform: Platform
    store: Store
    settings: Settings
    tp: TopicPartition
    producer: FlakyProducer


@pytest.fixture
async def parts(stack: Stack) -> AsyncIterator[Parts]:
    prefix = f"steps{uuid.uuid4().hex[:8]}"
    settings = Settings(
        kafka_bootstrap=stack.kafka, mongo_url=stack.mongo, mongo_db_prefix=f"{prefix}_",
        topic_actions=f"{prefix}.actions", topic_action_results=f"{prefix}.results",
        delivery_backoff_ms=10,
    )  # fmt: skip
    await ensure_topics(settings, [settings.topic_action_results])
    store = Store(stack.mongo, settings.database_name("ingestion"))
    producer = FlakyProducer(settings)
    producer.slow = None
    await producer.start()
    platform = Platform()
    platforms: dict[int, Adapter] = {common_pb2.PLATFORM_SIM: platform}
    delivery = Delivery(store, store[TIMELINE], producer, settings, platforms)
    tp = TopicPartition(settings.topic_actions, 0)
    delivery.holds.assigned([tp])
    try:
        yield Parts(delivery, platform, store, settings, tp, producer)
    finally:
        await delivery.close()
        await producer.stop()
        await store.client.drop_database(store.db.name)
        await store.close()


def _record(tp: TopicPartition, offset: int, tenant: str = "t") -> Record[actions_pb2.Action]:
    action = actions_pb2.Action(
        action_id=f"a-{uuid.uuid4().hex[:8]}", tenant_id=tenant, group_id="g",
        platform=common_pb2.PLATFORM_SIM, source_service="test",
    )  # fmt: skip
    action.created_at.GetCurrentTime()
    action.send_text.text = "你好"
    return Record(tp.topic, tp.partition, offset, b"t:g", action.SerializeToString(), action)


async def test_a_result_that_could_not_be_sent_is_sent_later_not_lost(parts: Parts) -> None:
    """The ledger said delivered, then sending the result failed: the retry found the ledger
    already written, skipped the rest and released the offset: no result, ever."""
    record = _record(parts.tp, 7)
    await parts.delivery.handle([record])
    assert parts.delivery.holds.first(parts.tp) == 7, "held while it is delivered"
    [result] = await read_topic(
        parts.settings.kafka_bootstrap, parts.settings.topic_action_results, 1
    )
    parsed = actions_pb2.ActionResult.FromString(result.value)
    assert (parsed.action_id, parsed.status) == (
        record.value.action_id,
        actions_pb2.DELIVERY_STATUS_DELIVERED,
    )
    assert parts.platform.calls == [record.value.action_id], "delivered once"
    await eventually(lambda: _first(parts), lambda first: first is None)


async def _first(parts: Parts) -> int | None:
    return parts.delivery.holds.first(parts.tp)


async def test_records_of_a_partition_taken_away_meanwhile_are_left_to_its_next_owner(
    parts: Parts,
) -> None:
    parts.delivery.holds.disown([parts.tp])
    record = _record(parts.tp, 3)
    await parts.delivery.handle([record])
    assert await parts.store[DELIVERIES].find_one({"_id": f"t:{record.value.action_id}"}) is None
    assert parts.platform.calls == [] and parts.delivery.holds.first(parts.tp) is None


async def test_a_groups_next_action_goes_out_while_the_last_ones_result_is_written(
    parts: Parts,
) -> None:
    """The platform is called in the group's order; writing a result does not hold back the
    group's next call (an ad's warning does not wait for the record of its deletion)."""
    parts.producer.failures = 0
    parts.producer.slow = asyncio.Event()
    deletion, warning = _record(parts.tp, 1), _record(parts.tp, 2)
    await parts.delivery.handle([deletion, warning])
    ids = [deletion.value.action_id, warning.value.action_id]
    assert await eventually(lambda: _calls(parts), lambda calls: calls == ids, 10)
    assert parts.delivery.holds.first(parts.tp) == 1, "held until their results are written"
    parts.producer.slow.set()
    results = await read_topic(
        parts.settings.kafka_bootstrap, parts.settings.topic_action_results, 2
    )
    assert sorted(
        actions_pb2.ActionResult.FromString(r.value).action_id for r in results
    ) == sorted(ids)
    await eventually(lambda: _first(parts), lambda first: first is None)


async def _calls(parts: Parts) -> list[str]:
    return parts.platform.calls
