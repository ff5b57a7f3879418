"""The gateway killed with SIGKILL while it is delivering, then started again: no action reaches
the platform twice, and every action gets a result. Ingestion runs here as its own process, on
its own topics, consumer groups and databases, against a slow Telegram stand-in."""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from services.devtools.stack import free_port
from services.gen.shequn.v1 import actions_pb2, common_pb2
from services.ingestion.delivery import IN_FLIGHT_AT_RESTART
from services.runtime.auth import Authenticator, Role
from services.runtime.bus import Outgoing, Producer, ensure_topics, group_key
from services.runtime.settings import Settings
from services.runtime.store import client
from tests.clients import put_telegram, ready
from tests.conftest import Stack, start_service
from tests.fakes import FakeTelegram, serve_fake
from tests.ingestion.isolated import isolated_env
from tests.kafka import read_topic
from tests.waiting import eventually

ACTIONS = 12


async def test_sigkill_during_delivery_delivers_nothing_twice(stack: Stack, tmp_path: Path) -> None:
    prefix = f"restart{uuid.uuid4().hex[:8]}"
    # The Telegram stand-in listens on 127.0.0.1.
    env = {**isolated_env(stack, prefix), "SHEQUN_OUTBOUND_ALLOW_PRIVATE_HOSTS": "true"}
    settings = Settings(
        kafka_bootstrap=stack.kafka,
        topic_actions=env["SHEQUN_TOPIC_ACTIONS"],
        topic_action_results=env["SHEQUN_TOPIC_ACTION_RESULTS"],
        kafka_partitions=2,
    )
    await ensure_topics(settings, [settings.topic_actions, settings.topic_action_results])
    mongo = client(stack.mongo)
    key = await Authenticator(mongo, f"{prefix}_", 0).create_key("restart", Role.OWNER, "test")
    await mongo.close()

    async with serve_fake(FakeTelegram(delay=0.6)) as telegram:
        port = free_port()
        log = tmp_path / "ingestion.log"
        first = start_service("ingestion", env, log, port)
        producer = Producer(settings)
        await producer.start()
        try:
            await eventually(lambda: ready(f"http://127.0.0.1:{port}"), bool, within=60)
            async with httpx.AsyncClient() as http:
                auth = {"Authorization": f"Bearer {key}"}
                await put_telegram(http, f"http://127.0.0.1:{port}", auth, telegram.url)
            actions = []
            for i in range(ACTIONS):
                action = actions_pb2.Action(
                    action_id=f"{prefix}-{i}",
                    tenant_id="restart",
                    group_id="-1001",
                    platform=common_pb2.PLATFORM_TELEGRAM,
                    source_service="test",
                )
                action.created_at.GetCurrentTime()
                action.send_text.text = f"消息 {i}"
                actions.append(action)
            # One group: its actions go out one after another, 0.6 s each.
            await producer.send_many(
                Outgoing(
                    settings.topic_actions, group_key("restart", "-1001"), a.SerializeToString()
                )
                for a in actions
            )
            await eventually(telegram.count, lambda n: n >= 3, within=60, every=0.05)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            second = start_service("ingestion", env, log, port)
            try:
                # Actions finished before the kill are answered again from the ledger.
                seen: set[str] = set()

                def first_of_each(m: Any) -> bool:
                    action_id = actions_pb2.ActionResult.FromString(m.value).action_id
                    new = action_id not in seen
                    seen.add(action_id)
                    return new

                results = await read_topic(
                    stack.kafka, settings.topic_action_results, ACTIONS, first_of_each
                )
            finally:
                second.terminate()
                second.wait(30)
        finally:
            if first.poll() is None:
                first.kill()
            await producer.stop()

    parsed = {
        actions_pb2.ActionResult.FromString(m.value).action_id: actions_pb2.ActionResult.FromString(
            m.value
        )
        for m in results
    }
    assert set(parsed) == {a.action_id for a in actions}, "every action got a result"
    sent = Counter(c.params["text"] for c in telegram.calls)
    assert max(sent.values()) == 1, f"something was sent twice: {sent}"
    unknown = [a for a, r in parsed.items() if r.status == actions_pb2.DELIVERY_STATUS_FAILED]
    assert all(parsed[a].reason == IN_FLIGHT_AT_RESTART for a in unknown)
    assert len(unknown) <= 1, "only the action on the wire at the kill has an unknown outcome"
    delivered = {a for a, r in parsed.items() if r.status == actions_pb2.DELIVERY_STATUS_DELIVERED}
    assert delivered | set(unknown) == set(parsed)
    # Everything delivered reached Telegram exactly once; the unknown one at most once.
    assert {f"消息 {a.rsplit('-', 1)[1]}" for a in delivered} <= set(sent)
    print(
        f"{len(telegram.calls)} calls for {ACTIONS} actions; {len(unknown)} in flight at the kill"
    )
