"""Analytics killed with SIGKILL in the middle of a stream and started again, then replaced by
a rolling update (the new process first, then SIGTERM to the old), counts every event exactly
once, in the groups' days and the tenant's (its members who posted, once a day), and each
membership's activation (its first message after the join) once.
It runs as its own process on its own topic and consumer group, and on a database server of
its own: its thousands of writes on the stack's would hold up the services that share it."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.devtools.stack import free_port, wait_for_port
from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.bus import Outgoing, Producer, ensure_topics, group_key
from services.runtime.settings import Settings
from services.runtime.store import client
from tests.clients import ready
from tests.conftest import Stack, start_service
from tests.waiting import eventually, stays

TOTAL = 2000
ROLLED = 3000  # after the rolling update
GROUPS = 20


async def _consumed(http_port: int) -> int:
    """Events the restarted process read, from its own /metrics."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{http_port}/metrics")).text
    for line in text.splitlines():
        if line.startswith('shequn_consumed_messages_total{consumer="analytics"'):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def _event(i: int) -> events_pb2.Event:
    event = events_pb2.Event(event_id=f"crash-{i}", tenant_id="crash", group_id=f"g-{i % GROUPS}")
    event.occurred_at.GetCurrentTime()
    event.received_at.GetCurrentTime()
    event.message_posted.member.CopyFrom(common_pb2.Member(id=f"u-{i % 97}"))
    event.message_posted.message.text = f"第 {i} 条消息"
    return event


# Every (group, member) pair that posts, joined a minute before the stream.
PAIRS = sorted({(i % GROUPS, i % 97) for i in range(TOTAL)})


def _joined(group: int, member: int) -> events_pb2.Event:
    event = events_pb2.Event(
        event_id=f"crash-join-{group}-{member}", tenant_id="crash", group_id=f"g-{group}"
    )
    event.occurred_at.FromSeconds(int(time.time()) - 60)
    event.received_at.GetCurrentTime()
    event.member_joined.member.id = f"u-{member}"
    return event


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[str]:
    """An embedded MongoDB-protocol server of the test's own; its URL."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.devtools.embedded_mongo",
        "--data-dir", str(tmp_path / "mongo"), "--host", "127.0.0.1", "-p", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_for_port(port)
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        server.terminate()
        await server.wait()


async def test_sigkill_then_a_rolling_update_mid_stream_count_exactly_once(
    stack: Stack, tmp_path: Path, database: str
) -> None:
    prefix = f"crash{uuid.uuid4().hex[:8]}"
    env = {
        "SHEQUN_KAFKA_BOOTSTRAP": stack.kafka,
        "SHEQUN_MONGO_URL": database,
        "SHEQUN_TOPIC_EVENTS": f"{prefix}.events",
        "SHEQUN_CONSUMER_GROUP_PREFIX": f"{prefix}.",
        "SHEQUN_DLQ_TOPIC_PREFIX": f"{prefix}.dlq.",
        "SHEQUN_MONGO_DB_PREFIX": f"{prefix}_",
        "SHEQUN_ROLLUP_BATCH_MAX_MESSAGES": "20",  # small batches, so the kill lands in one
    }
    settings = Settings(
        kafka_bootstrap=stack.kafka, topic_events=env["SHEQUN_TOPIC_EVENTS"], kafka_partitions=3
    )
    await ensure_topics(settings, [settings.topic_events])
    mongo = client(database)
    counters = mongo[f"{prefix}_analytics"]["group_daily"]
    tenant_days = mongo[f"{prefix}_analytics"]["tenant_daily"]

    async def counted() -> int:
        found = counters.find({"tenant_id": "crash"}, {"messages": 1})
        return sum([d.get("messages", 0) async for d in found])

    async def activated() -> tuple[int, int]:
        """Activations in the tenant's days and in the groups' days."""
        in_tenant = [d.get("activated", 0) async for d in tenant_days.find({"tenant_id": "crash"})]
        in_groups = [d.get("activated", 0) async for d in counters.find({"tenant_id": "crash"})]
        return sum(in_tenant), sum(in_groups)

    async def tenant_counted() -> tuple[int, dict[str, int]]:
        messages, posted = 0, dict[str, int]()
        async for d in tenant_days.find({"tenant_id": "crash"}):
            messages += d.get("messages_total", 0)
            posted[d["date"]] = posted.get(d["date"], 0) + d.get("members_posted", 0)
        return messages, {day: n for day, n in posted.items() if n}

    async def posters_by_day() -> dict[str, int]:
        found: dict[str, set[str]] = {}
        async for d in counters.find({"tenant_id": "crash"}, {"date": 1, "posters": 1}):
            found.setdefault(d["date"], set()).update(d.get("posters", []))
        # Days with none: a day that counts only cohorts (a join's day, D1, ...).
        return {day: len(who) for day, who in found.items() if who}

    producer = Producer(settings)
    await producer.start()

    async def stream(start: int, stop: int, per_tick: int = 25, pause: float = 0.1) -> None:
        for first in range(start, stop, per_tick):
            await producer.send_many(
                Outgoing(
                    settings.topic_events, group_key(e.tenant_id, e.group_id), e.SerializeToString()
                )
                for e in map(_event, range(first, min(first + per_tick, stop)))
            )
            await asyncio.sleep(pause)

    log = tmp_path / "analytics.log"
    first = start_service("analytics", env, log)
    try:
        await producer.send_many(
            Outgoing(
                settings.topic_events,
                group_key("crash", f"g-{g}"),
                _joined(g, m).SerializeToString(),
            )
            for g, m in PAIRS
        )
        await stream(0, 100)
        await eventually(counted, lambda n: n > 0, within=60)
        # Faster than analytics absorbs it, so that the kill lands inside a batch.
        streaming = asyncio.create_task(stream(100, TOTAL, per_tick=50, pause=0.02))
        at_kill = await eventually(counted, lambda n: n >= 600, within=60, every=0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        after_kill = await counted()
        assert at_kill < TOTAL, "the stream was over before the kill; nothing was proven"
        second = start_service("analytics", env, log, http_port := free_port())
        try:
            await streaming
            await eventually(counted, lambda n: n >= TOTAL, within=90)
            await stays(counted, TOTAL, for_seconds=3)
            messages, posted = await eventually(tenant_counted, lambda t: t[0] >= TOTAL)
            assert (messages, posted) == (TOTAL, await posters_by_day())
            assert await eventually(activated, lambda a: a[0] >= len(PAIRS)) == (
                len(PAIRS), len(PAIRS)
            )  # fmt: skip
            read_again = await _consumed(http_port) - (TOTAL - after_kill)
            print(f"killed at {after_kill} counted; {read_again} events read again and skipped")
            assert read_again >= 0

            # Then a rolling update, as Kubernetes does it: the new process first, ready; then
            # SIGTERM to the old one in the middle of the stream. It finishes and commits its
            # batch within its shutdown time and exits cleanly; the new one takes its partitions.
            third = start_service("analytics", env, log, third_port := free_port())
            try:
                await eventually(lambda: ready(f"http://127.0.0.1:{third_port}"), bool, within=60)
                streaming = asyncio.create_task(stream(TOTAL, ROLLED, per_tick=10, pause=0.1))
                await eventually(counted, lambda n: n > TOTAL, within=60, every=0.05)
                second.terminate()
                assert second.wait(Settings().shutdown_seconds + 10) == 0
                assert not streaming.done(), "the stream was over before the rollout"
                await streaming
                await eventually(counted, lambda n: n >= ROLLED, within=90)
                await stays(counted, ROLLED, for_seconds=3)
                messages, _ = await eventually(tenant_counted, lambda t: t[0] >= ROLLED)
                assert messages == ROLLED
            finally:
                third.terminate()
                assert third.wait(30) == 0
        finally:
            if second.poll() is None:
                second.kill()
    finally:
        if first.poll() is None:
            first.kill()
        await producer.stop()
        await mongo.close()
