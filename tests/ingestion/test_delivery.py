"""Outbound delivery through the real actions topic, ingestion process and platform adapters:
the sim platform, and Telegram against a local Bot API stand-in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.gen.shequn.v1 import actions_pb2, common_pb2
from services.ingestion.actions import ACTION_ROLES
from services.ingestion.delivery import IN_FLIGHT_AT_RESTART
from services.runtime.store import client
from tests.clients import BOT_TOKEN, SECRET, joined, post_events, put_telegram
from tests.conftest import Stack, Tenant
from tests.fakes import NOT_FOUND, SERVER_ERROR, TOO_MANY, FakeTelegram, fake_telegram
from tests.kafka import produce, read_topic
from tests.waiting import eventually


async def act(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, **action: Any) -> str:
    """Ask for an action with the least role that may (roles are a table: ACTION_ROLES)."""
    role = ACTION_ROLES[action["type"]].name.lower()
    response = await http.post(
        stack.http("ingestion") + "/v1/actions", json=action, headers=tenant.headers(role)
    )
    assert response.status_code == 202, response.text
    return str(response.json()["action_id"])


async def timeline(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group: str
) -> list[dict[str, Any]]:
    response = await http.get(
        stack.http("ingestion") + f"/v1/groups/{group}/timeline", headers=tenant.headers("viewer")
    )
    response.raise_for_status()
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _action(items: list[dict[str, Any]], action_id: str) -> dict[str, Any] | None:
    return next((i for i in items if i.get("action_id") == action_id), None)


def _finished(action_id: str) -> Any:
    return lambda items: (_action(items, action_id) or {}).get("status", "pending") != "pending"


async def test_sim_kick_removes_the_member_and_the_timeline_shows_it(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    await post_events(http, stack, tenant, [joined(group, "u-1"), joined(group, "u-2")])
    await eventually(lambda: timeline(http, stack, tenant, group), lambda items: len(items) == 2)

    kick = await act(
        http, stack, tenant, type="kick_member", group_id=group, member_id="u-1", reason="广告"
    )
    items = await eventually(
        lambda: timeline(http, stack, tenant, group),
        lambda items: (
            any(i["type"] == "member_left" for i in items) and _finished(kick)(items) is not False
        ),
    )
    entry = _action(items, kick)
    assert entry is not None
    assert entry["status"] == "delivered" and entry["source_service"] == "api"
    assert entry["member"]["id"] == "u-1"
    left = next(i for i in items if i["type"] == "member_left")
    assert left["member"]["id"] == "u-1" and left["text"] == "kicked"
    assert [i["type"] for i in items].index("kick_member") < [i["type"] for i in items].index(
        "member_left"
    )

    # u-1 is gone: kicking again fails with the reason; u-2 is still there.
    again = await act(http, stack, tenant, type="kick_member", group_id=group, member_id="u-1")
    items = await eventually(lambda: timeline(http, stack, tenant, group), _finished(again))
    entry = _action(items, again)
    assert entry is not None
    assert entry["status"] == "failed" and "not a member" in entry["reason"]


async def test_sim_rename_and_messages(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    said = await act(
        http, stack, tenant, type="send_text", group_id=group, text="欢迎新朋友", mentions=["u-1"]
    )
    rename = await act(http, stack, tenant, type="rename_group", group_id=group, name="福利3群")
    items = await eventually(
        lambda: timeline(http, stack, tenant, group),
        lambda items: _finished(said)(items) and any(i["type"] == "group_updated" for i in items),
    )
    assert (_action(items, said) or {})["status"] == "delivered"
    assert (_action(items, rename) or {})["status"] == "delivered"
    assert next(i for i in items if i["type"] == "group_updated")["text"] == "福利3群"

    results = await read_topic(
        stack.kafka,
        "shequn.action-results.v1",
        2,
        lambda m: actions_pb2.ActionResult.FromString(m.value).action_id in {said, rename},
    )
    parsed = [actions_pb2.ActionResult.FromString(m.value) for m in results]
    assert {r.status for r in parsed} == {actions_pb2.DELIVERY_STATUS_DELIVERED}
    assert {r.action_type for r in parsed} == {"send_text", "rename_group"}


async def test_timeline_pages(stack: Stack, tenant: Tenant, http: httpx.AsyncClient) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    await post_events(http, stack, tenant, [joined(group, f"u-{i}") for i in range(5)])
    await eventually(lambda: timeline(http, stack, tenant, group), lambda items: len(items) == 5)
    url = stack.http("ingestion") + f"/v1/groups/{group}/timeline"
    first = (await http.get(url, params={"limit": 3}, headers=tenant.headers("viewer"))).json()
    rest = (
        await http.get(
            url, params={"limit": 3, "after": first["next"]}, headers=tenant.headers("viewer")
        )
    ).json()
    assert len(first["items"]) == 3 and len(rest["items"]) == 2 and rest["next"] is None
    members = [i["member"]["id"] for i in first["items"] + rest["items"]]
    assert sorted(members) == [f"u-{i}" for i in range(5)]
    other = await http.get(url, headers={"Authorization": "Bearer nope"})
    assert other.status_code == 401


async def test_the_timeline_is_kept_on_a_server_of_its_own(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """Written for every event, the busiest collection: in the dev stack its writes do not
    queue behind the intake's on ingestion's own server."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    await post_events(http, stack, tenant, [joined(group, "u-1")])
    await eventually(lambda: timeline(http, stack, tenant, group), lambda items: len(items) == 1)
    prefix = f"{tenant.id}:{group}:"
    on_record = {"position": {"$gte": prefix, "$lt": prefix + "\U0010ffff"}}
    servers = stack.info["services"]["ingestion"]
    for url, kept in ((servers["timeline_mongo_url"], 1), (servers["mongo_url"], 0)):
        mongo = client(url)
        try:
            assert await mongo["shequn_ingestion"]["timeline"].count_documents(on_record) == kept
        finally:
            await mongo.close()


@pytest.fixture
async def telegram(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> AsyncIterator[FakeTelegram]:
    async with fake_telegram() as fake:
        await put_telegram(http, stack.http("ingestion"), tenant.headers("owner"), fake.url)
        yield fake


def _chat() -> str:
    return f"-100{uuid.uuid4().int % 10**10}"


async def test_telegram_transient_failures_are_retried_then_reported(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    recovers, never = _chat(), _chat()
    telegram.answer(recovers, SERVER_ERROR, SERVER_ERROR)
    telegram.answer(never, *[SERVER_ERROR] * 4)
    ok = await act(
        http, stack, tenant, type="send_text", platform="telegram", group_id=recovers, text="早上好"
    )
    bad = await act(
        http, stack, tenant, type="send_text", platform="telegram", group_id=never, text="早上好"
    )
    ok_items = await eventually(lambda: timeline(http, stack, tenant, recovers), _finished(ok))
    bad_items = await eventually(lambda: timeline(http, stack, tenant, never), _finished(bad))
    assert (_action(ok_items, ok) or {})["status"] == "delivered"
    assert (_action(ok_items, ok) or {})["attempts"] == 3
    failed = _action(bad_items, bad) or {}
    assert failed["status"] == "failed" and failed["attempts"] == 4
    assert failed["reason"] == "telegram 500: Internal Server Error"
    assert len(telegram.calls_for(recovers)) == 3 and len(telegram.calls_for(never)) == 4
    assert all(
        c.token == BOT_TOKEN and c.method == "sendMessage" for c in telegram.calls_for(recovers)
    )


async def test_telegram_429_retry_after_is_honoured(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    chat = _chat()
    telegram.answer(chat, TOO_MANY)
    sent = await act(
        http, stack, tenant, type="send_text", platform="telegram", group_id=chat, text="抢购开始"
    )
    await eventually(lambda: timeline(http, stack, tenant, chat), _finished(sent))
    first, second = telegram.calls_for(chat)
    assert second.at - first.at >= 0.95, "the retry came before the retry_after Telegram asked for"


async def test_telegram_permanent_errors_and_unsupported_actions(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    chat = _chat()
    telegram.answer(chat, NOT_FOUND)
    delete = await act(
        http,
        stack,
        tenant,
        type="delete_message",
        platform="telegram",
        group_id=chat,
        message_id="42",
    )
    packet = await act(
        http, stack, tenant, type="send_red_packet", platform="telegram", group_id=chat, amount=8.8
    )
    dismiss = await act(
        http, stack, tenant, type="dismiss_group", platform="telegram", group_id=chat
    )
    items = await eventually(
        lambda: timeline(http, stack, tenant, chat),
        lambda items: all(_finished(a)(items) for a in (delete, packet, dismiss)),
    )
    assert (_action(items, delete) or {})[
        "reason"
    ] == "telegram 400: Bad Request: message to delete not found"
    assert (_action(items, delete) or {})["attempts"] == 1
    assert (_action(items, packet) or {})["status"] == "unsupported"
    assert (_action(items, dismiss) or {})["status"] == "unsupported"
    assert [c.method for c in telegram.calls_for(chat)] == ["deleteMessage"]
    assert telegram.calls_for(chat)[0].params == {"chat_id": chat, "message_id": 42}


def _telegram_text(tenant: Tenant, chat: str, text: str) -> actions_pb2.Action:
    """An action as a service would put it on the actions topic."""
    action = actions_pb2.Action(
        action_id=f"test-{uuid.uuid4().hex}",
        tenant_id=tenant.id,
        group_id=chat,
        platform=common_pb2.PLATFORM_TELEGRAM,
        source_service="test",
    )
    action.created_at.GetCurrentTime()
    action.send_text.text = text
    return action


async def test_a_redelivered_action_is_not_delivered_again(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    chat = _chat()
    action = _telegram_text(tenant, chat, "只发一次")
    message = ("shequn.actions.v1", f"{tenant.id}:{chat}".encode(), action.SerializeToString())

    def is_result(m: Any) -> bool:
        return actions_pb2.ActionResult.FromString(m.value).action_id == action.action_id

    await produce(stack.kafka, [message])
    await read_topic(stack.kafka, "shequn.action-results.v1", 1, is_result)
    await produce(stack.kafka, [message])  # again, at a new offset, after it was delivered
    results = await read_topic(stack.kafka, "shequn.action-results.v1", 2, is_result)
    assert {actions_pb2.ActionResult.FromString(m.value).status for m in results} == {
        actions_pb2.DELIVERY_STATUS_DELIVERED
    }
    assert len(telegram.calls_for(chat)) == 1


async def test_an_action_in_flight_at_a_restart_is_reported_not_repeated(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    """What a gateway finds after it died during a platform call: the claim without a result."""
    chat = _chat()
    action = _telegram_text(tenant, chat, "发到一半")
    mongo = client(stack.mongo)
    try:
        await mongo["shequn_ingestion"]["deliveries"].insert_one(
            {
                "_id": f"{tenant.id}:{action.action_id}",
                "tenant_id": tenant.id,
                "status": "delivering",
            }
        )
    finally:
        await mongo.close()
    await produce(
        stack.kafka,
        [("shequn.actions.v1", f"{tenant.id}:{chat}".encode(), action.SerializeToString())],
    )
    [result] = await read_topic(
        stack.kafka,
        "shequn.action-results.v1",
        1,
        lambda m: actions_pb2.ActionResult.FromString(m.value).action_id == action.action_id,
    )
    parsed = actions_pb2.ActionResult.FromString(result.value)
    assert parsed.status == actions_pb2.DELIVERY_STATUS_FAILED
    assert parsed.reason == IN_FLIGHT_AT_RESTART
    assert telegram.calls_for(chat) == []


async def test_no_secret_reaches_a_log_line(stack: Stack) -> None:
    """After the deliveries above: the bot token went into every Bot API URL, never a log."""
    log = (stack.state_dir.parent / f"{stack.state_dir.name}.log").read_text(errors="replace")
    assert BOT_TOKEN not in log and BOT_TOKEN.split(":")[1] not in log
    assert SECRET not in log


async def test_a_platforms_error_answer_is_stored_shortened(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    """A tenant can point the adapter at a server of its choosing: what it answers must not
    become a way to read that server through the timeline."""
    chat = _chat()
    telegram.answer(chat, (400, {"ok": False, "error_code": 400, "description": "x" * 10_000}))
    sent = await act(
        http, stack, tenant, type="send_text", platform="telegram", group_id=chat, text="你好"
    )
    items = await eventually(lambda: timeline(http, stack, tenant, chat), _finished(sent))
    entry = _action(items, sent)
    assert entry is not None and entry["status"] == "failed"
    assert entry["reason"].startswith("telegram 400: xxx") and len(entry["reason"]) <= 300
