"""Delivery never holds a partition: a group waiting for the platform's pacing or for a retry
holds back only itself, in order; one tenant's platform cannot stall another tenant; pacing is
keyed by tenant and bot, and shared by replicas; a wait asked for is bounded."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from pymongo.asynchronous.collection import AsyncCollection

from services.ingestion.pacing import PACING, SharedWindows
from services.runtime.store import Document, Store
from tests.clients import put_telegram
from tests.conftest import Stack, Tenant, create_tenant
from tests.fakes import FakeTelegram, serve_fake
from tests.ingestion.isolated import isolated_ingestion
from tests.ingestion.test_delivery import (
    _action,
    _chat,
    _finished,
    _telegram_text,
    act,
    timeline,
)
from tests.kafka import produce
from tests.waiting import eventually


def _too_many(seconds: float) -> tuple[int, dict[str, object]]:
    return (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {seconds}",
            "parameters": {"retry_after": seconds},
        },
    )


async def _configure(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, fake: FakeTelegram
) -> None:
    await put_telegram(http, stack.http("ingestion"), tenant.headers("owner"), fake.url)


@pytest.fixture
async def telegram(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> AsyncIterator[FakeTelegram]:
    async with serve_fake(FakeTelegram()) as fake:
        await _configure(http, stack, tenant, fake)
        yield fake


async def _send(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, chat: str, text: str) -> str:
    return await act(
        http, stack, tenant, type="send_text", platform="telegram", group_id=chat, text=text
    )


async def test_a_groups_backlog_holds_back_only_that_group(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    """Telegram takes 20 messages a minute in a group: the 21st waits a minute, and a message
    for another group asked for meanwhile went out 58 s late, behind it."""
    busy, other = _chat(), _chat()
    for i in range(23):
        await _send(http, stack, tenant, busy, f"第{i}条")
    await eventually(lambda: _calls(telegram, busy), lambda n: n == 20)
    asked = time.monotonic()
    sent = await _send(http, stack, tenant, other, "另一个群")
    await eventually(lambda: timeline(http, stack, tenant, other), _finished(sent), within=10)
    assert time.monotonic() - asked < 5
    # The busy group's own messages went in order, and the rest are waiting their minute.
    assert [c.params["text"] for c in telegram.calls_for(busy)] == [f"第{i}条" for i in range(20)]
    items = await timeline(http, stack, tenant, busy)
    statuses = [str(i.get("status")) for i in items if i["kind"] == "action"]
    assert sorted(statuses) == ["delivered"] * 20 + ["pending"] * 3


async def _calls(telegram: FakeTelegram, chat: str) -> int:
    return len(telegram.calls_for(chat))


async def test_a_retry_waits_without_stalling_another_tenant(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    """A Telegram stand-in answering 429 with retry_after 30 delayed another tenant's sim
    action by 108 s. The group's next message waits behind the retried one."""
    chat = _chat()
    telegram.answer(chat, _too_many(3))
    first = await _send(http, stack, tenant, chat, "一")
    second = await _send(http, stack, tenant, chat, "二")
    await eventually(lambda: _calls(telegram, chat), lambda n: n == 1)
    other = await create_tenant(stack)
    group = f"g-{uuid.uuid4().hex[:8]}"
    asked = time.monotonic()
    said = await act(http, stack, other, type="send_text", group_id=group, text="你好")
    await eventually(lambda: timeline(http, stack, other, group), _finished(said), within=10)
    assert time.monotonic() - asked < 5
    items = await eventually(
        lambda: timeline(http, stack, tenant, chat), lambda i: _finished(second)(i), within=30
    )
    assert (_action(items, first) or {})["status"] == "delivered"
    calls = telegram.calls_for(chat)
    assert [c.params["text"] for c in calls] == ["一", "一", "二"], "in order, after the wait"
    assert calls[1].at - calls[0].at >= 2.9


async def test_a_wait_longer_than_allowed_fails_and_blocks_only_this_tenants_bot(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    """retry_after 1e9 stopped the tenant's deliveries for good; and the block was keyed by the
    bot's public id, so another tenant naming the same bot was blocked too."""
    chat = _chat()
    telegram.answer(chat, _too_many(1e9))
    sent = await _send(http, stack, tenant, chat, "抢购")
    items = await eventually(lambda: timeline(http, stack, tenant, chat), _finished(sent))
    entry = _action(items, sent) or {}
    assert entry["status"] == "failed" and "more than the 60 s allowed" in entry["reason"]
    other = await create_tenant(stack)
    async with serve_fake(FakeTelegram()) as theirs:
        await _configure(http, stack, other, theirs)  # the same bot token, its own tenant
        theirs_chat = _chat()
        asked = time.monotonic()
        said = await _send(http, stack, other, theirs_chat, "不受影响")
        await eventually(lambda: timeline(http, stack, other, theirs_chat), _finished(said))
        assert time.monotonic() - asked < 5
        assert len(theirs.calls_for(theirs_chat)) == 1


async def test_a_gateway_with_actions_waiting_stops_at_once_and_loses_none(
    stack: Stack, tmp_path: Path
) -> None:
    """With a wait scheduled, SIGTERM ends the process within seconds; what was waiting is read
    again by the next process and delivered."""
    extra = {"SHEQUN_OUTBOUND_ALLOW_PRIVATE_HOSTS": "true"}
    async with serve_fake(FakeTelegram()) as fake:
        fake.answer("-1002", _too_many(20))
        log = tmp_path / "ingestion.log"
        async with isolated_ingestion(stack, log, extra) as ingestion:
            headers = ingestion.headers
            async with httpx.AsyncClient() as http:
                await put_telegram(http, ingestion.url, headers, fake.url)
                response = await http.post(
                    f"{ingestion.url}/v1/actions",
                    json={"type": "send_text", "platform": "telegram", "group_id": "-1002",
                          "text": "稍后再发"},
                    headers=headers,
                )  # fmt: skip
                action_id = response.json()["action_id"]
                await eventually(lambda: _calls(fake, "-1002"), lambda n: n == 1)
            stopping = time.monotonic()
            ingestion.process.terminate()
            await asyncio.to_thread(ingestion.process.wait, 30)
            assert time.monotonic() - stopping < 10, "the scheduled wait did not hold the exit"
        async with (
            isolated_ingestion(stack, log, again=ingestion) as again,
            httpx.AsyncClient() as http,
        ):

            async def entry() -> dict[str, object]:
                items = (
                    await http.get(f"{again.url}/v1/groups/-1002/timeline", headers=again.headers)
                ).json()["items"]
                return _action(items, action_id) or {}

            done = await eventually(
                entry, lambda e: e.get("status") not in (None, "pending"), within=60
            )
    assert done["status"] == "delivered"
    assert [c.params["text"] for c in fake.calls_for("-1002")] == ["稍后再发"] * 2


async def test_bot_limits_are_shared_by_every_replica(stack: Stack) -> None:
    """Two replicas (two SharedWindows on one collection): 30 a second for a bot in all."""
    store = Store(stack.mongo, f"pacing_{uuid.uuid4().hex[:8]}")
    clock = [1_000_000.25]
    replicas = [SharedWindows(store[PACING], clock=lambda: clock[0]) for _ in range(2)]
    try:
        waits = await asyncio.gather(
            *(replicas[i % 2].wait("t:telegram:1", 30, 1.0) for i in range(40))
        )
        assert sum(1 for w in waits if w == 0) == 30
        assert all(0 < w <= 0.75 for w in waits if w)
        clock[0] += 1  # the next second
        assert await replicas[1].wait("t:telegram:1", 30, 1.0) == 0
        await replicas[0].block("t:telegram:1", 5)  # Telegram said to wait: both replicas do
        assert 4.9 < await replicas[1].wait("t:telegram:1", 30, 1.0) <= 5
        assert await replicas[1].wait("u:telegram:1", 30, 1.0) == 0, "another tenant's bot"
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()


class _Counted:
    """A collection that counts the conditional updates made on it (round trips)."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection, self.updates = collection, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collection, name)

    async def find_one_and_update(self, *args: Any, **kwargs: Any) -> Any:
        self.updates += 1
        return await self.collection.find_one_and_update(*args, **kwargs)


async def test_a_bots_first_call_of_a_second_costs_one_round_trip(stack: Stack) -> None:
    store = Store(stack.mongo, f"pacing_{uuid.uuid4().hex[:8]}")
    clock = [2_000_000.5]
    counted = _Counted(store[PACING])
    windows = SharedWindows(cast("AsyncCollection[Document]", counted), clock=lambda: clock[0])
    try:
        assert await windows.wait("t:telegram:1", 30, 1.0) == 0
        for _ in range(3):
            clock[0] += 1
            before = counted.updates
            assert await windows.wait("t:telegram:1", 30, 1.0) == 0
            assert counted.updates - before == 1, "the new window opened at the first try"
            before = counted.updates
            assert await windows.wait("t:telegram:1", 30, 1.0) == 0
            assert counted.updates - before == 1, "and counted in at the first try"
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()


async def test_the_same_action_twice_on_the_topic_while_it_is_in_flight_goes_out_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    """The second copy found the first `delivering` and reported it failed (in flight at a
    restart), and the first's result then lost to that report."""
    telegram.delay = 1.5
    chat = _chat()
    action = _telegram_text(tenant, chat, "只发一次")
    message = ("shequn.actions.v1", f"{tenant.id}:{chat}".encode(), action.SerializeToString())
    await produce(stack.kafka, [message])
    await eventually(lambda: _calls(telegram, chat), lambda n: n == 1)
    await produce(stack.kafka, [message])  # while the first call is under way
    items = await eventually(
        lambda: timeline(http, stack, tenant, chat), _finished(action.action_id), within=30
    )
    telegram.delay = 0
    assert (_action(items, action.action_id) or {})["status"] == "delivered"
    assert len(telegram.calls_for(chat)) == 1
