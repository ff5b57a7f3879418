"""The check-in consumer against the real broker and database: a batch handled again after a
crash, at any step, books each check-in once and answers it under the same action id, which
delivery sends once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.engagement.checkin import CheckinRules, Record, check_in, day_of
from services.engagement.checkins import Checkins
from services.engagement.points import LEDGER, Points
from services.engagement.settings import SETTINGS, TenantSettings
from services.gen.shequn.v1 import actions_pb2, common_pb2, events_pb2
from services.runtime.bus import Producer, ensure_topics
from services.runtime.envelope import new_event
from services.runtime.settings import Settings
from services.runtime.store import Store
from tests.conftest import Stack
from tests.kafka import read_topic

AT = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai


def said(text: str, member: str = "u1", event_id: str | None = None) -> events_pb2.Event:
    event = new_event(event_id or uuid.uuid4().hex, "t", "g", common_pb2.PLATFORM_SIM, AT, AT)
    event.message_posted.member.id, event.message_posted.member.name = member, "小明"
    event.message_posted.message.text = text
    return event


@pytest.fixture
async def checkins(stack: Stack) -> AsyncIterator[Checkins]:
    topic = f"test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        kafka_bootstrap=stack.kafka,
        topic_actions=f"{topic}.actions",
        topic_events=f"{topic}.events",
    )
    await ensure_topics(settings, [settings.topic_actions, settings.topic_events])
    store = Store(stack.mongo_of("engagement"), f"checkins_{uuid.uuid4().hex[:8]}")
    producer = Producer(settings)
    await producer.start()
    yield Checkins(store, Points(store), producer, settings, TenantSettings(store[SETTINGS]))
    await producer.stop()
    await store.client.drop_database(store.db.name)
    await store.close()


async def _replies(stack: Stack, checkins: Checkins, count: int) -> list[actions_pb2.Action]:
    found = await read_topic(stack.kafka, checkins.topic, count)
    return [actions_pb2.Action.FromString(r.value) for r in found]


async def test_a_batch_handled_again_books_nothing_twice_and_answers_alike(
    stack: Stack, checkins: Checkins
) -> None:
    batch = [said("签到"), said("打卡", "u2"), said("签到"), said("hello")]
    await checkins.handle(batch)
    await checkins.handle(batch)  # read again: a crash before the commit
    replies = await _replies(stack, checkins, 6)
    assert len({r.action_id for r in replies}) == 3, "the same three answers, twice"
    assert sum("已经签到" in r.send_text.text for r in replies) == 2
    assert all(r.send_text.mentions[0] in ("u1", "u2") for r in replies)
    assert await checkins.points.balance("t", "u1") == 10
    assert await checkins.points.balance("t", "u2") == 10
    assert await checkins.points.ledger.database[LEDGER].count_documents({}) == 2


async def test_a_check_in_recorded_by_a_process_that_died_then_is_rewarded_once(
    stack: Stack, checkins: Checkins
) -> None:
    event = said("签到", event_id="ev-crash")
    # What the dead process wrote: the member's record, before the points and the reply.
    outcome = check_in(Record(), day_of(AT, checkins.tz), event.event_id, CheckinRules())
    await checkins.write_records({}, {"t:u1": outcome.record})
    await checkins.handle([event])
    [reply] = await _replies(stack, checkins, 1)
    assert reply.action_id == "engagement:ev-crash:checkin"
    assert "签到成功" in reply.send_text.text and "当前积分 10" in reply.send_text.text
    await checkins.handle([event])
    assert await checkins.points.balance("t", "u1") == 10
