"""Engagement killed with SIGKILL while a welcome window is open, and started again: the window
it had filled gets one combined welcome from the new process, the joins it reads again change
nothing, and a later join gets its own. The service runs as its own process on its own topics,
consumer groups and database."""

from __future__ import annotations

import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.gen.shequn.v1 import actions_pb2, common_pb2, events_pb2
from services.runtime.bus import Outgoing, Producer, ensure_topics, group_key
from services.runtime.store import client
from tests.conftest import Stack, start_service
from tests.ingestion.isolated import isolated_env, settings_of
from tests.kafka import produce, read_topic
from tests.waiting import eventually, stays


def _joined(member: str, at: datetime) -> events_pb2.Event:
    event = events_pb2.Event(
        event_id=f"join-{member}", tenant_id="rs", group_id="g", platform=common_pb2.PLATFORM_SIM
    )
    event.occurred_at.FromDatetime(at)
    event.received_at.FromDatetime(at)
    event.member_joined.member.CopyFrom(common_pb2.Member(id=member, name=f"用户{member}"))
    return event


async def test_a_window_open_when_engagement_died_is_welcomed_once(
    stack: Stack, tmp_path: Path
) -> None:
    prefix = f"wr{uuid.uuid4().hex[:8]}"
    env = {**isolated_env(stack, prefix), "SHEQUN_KAFKA_PARTITIONS": "1"}
    settings = settings_of(env)
    await ensure_topics(settings, [settings.topic_events, settings.topic_actions])
    mongo = client(stack.mongo)
    engagement = mongo[f"{prefix}_engagement"]
    # The tenant's welcome: combined over 10 s, so that the kill comes while the window is open.
    # (The new process may read the events again only after the broker has given up on the
    # dead one; joins still unread when their window falls due get windows of their own.)
    welcome = {"welcome": {"combine_window_seconds": 10, "hold_seconds": 0}}
    await engagement["settings"].insert_one({"_id": "rs", "settings": welcome, "version": 1})
    producer = Producer(settings)
    await producer.start()

    async def send(*events: events_pb2.Event) -> None:
        await producer.send_many(
            Outgoing(settings.topic_events, group_key("rs", "g"), e.SerializeToString())
            for e in events
        )

    now = datetime.now(UTC)
    log = tmp_path / "engagement.log"
    first = start_service("engagement", env, log)
    try:
        await send(*(_joined(m, now + timedelta(seconds=i)) for i, m in enumerate("abc")))
        windows = engagement["welcome_windows"]

        async def placed() -> int:
            return sum([len(d["joins"]) async for d in windows.find({})])

        await eventually(placed, lambda n: n == 3)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert datetime.now(UTC) < now + timedelta(seconds=10), "the window closed before the kill"
        second = start_service("engagement", env, log)
        try:
            await send(_joined("a", now), _joined("d", now + timedelta(seconds=12)))
            found = await read_topic(stack.kafka, settings.topic_actions, 2)
            sent = [actions_pb2.Action.FromString(r.value) for r in found]
            assert [list(a.send_text.mentions) for a in sent] == [["a", "b", "c"], ["d"]]
            assert sent[0].send_text.text.startswith("欢迎 用户a、用户b、用户c 加入")
            await eventually(lambda: windows.count_documents({"state": "sent"}), lambda n: n == 2)
            await stays(lambda: windows.count_documents({}), 2)
            end = b"end-" + uuid.uuid4().bytes
            await produce(stack.kafka, [(settings.topic_actions, None, end)])
            everything = await read_topic(stack.kafka, settings.topic_actions, 3)
            assert everything[2].value == end, "nothing sent twice"
        finally:
            second.terminate()
            assert second.wait(30) == 0
    finally:
        if first.poll() is None:
            first.kill()
        await producer.stop()
        await mongo.close()
