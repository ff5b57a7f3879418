"""The platform webhooks through real HTTP into the pipeline."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.clients import BOT_TOKEN, SECRET, dead_lettered, put_telegram
from tests.conftest import Stack, Tenant
from tests.ingestion.test_delivery import timeline
from tests.waiting import eventually, stays

DATA = Path(__file__).parent.parent / "data"


async def _configure_telegram(http: httpx.AsyncClient, stack: Stack, tenant: Tenant) -> None:
    await put_telegram(http, stack.http("ingestion"), tenant.headers("owner"))


async def _new_chat(http: httpx.AsyncClient, stack: Stack, tenant: Tenant) -> tuple[int, str]:
    """A Telegram group of the tenant's bot never seen before, and the tenant's webhook."""
    await _configure_telegram(http, stack, tenant)
    chat = -(10**12) - uuid.uuid4().int % 10**9
    return chat, stack.http("ingestion") + f"/v1/webhooks/telegram/{tenant.id}"


async def _events(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, chat: int
) -> list[dict[str, Any]]:
    """A chat's timeline without moderation's answers (its actions are in the same timeline)."""
    return [i for i in await timeline(http, stack, tenant, str(chat)) if i["kind"] == "event"]


def _update(name: str, chat: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "telegram" / name).read_text())
    for part in ("message", "chat_member"):
        if part in data:
            data[part]["chat"]["id"] = chat
    return data


async def test_telegram_updates_become_events(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    chat, url = await _new_chat(http, stack, tenant)
    names = [
        "new_chat_members.json",
        "message_text_entities.json",
        "message_photo.json",
        "new_chat_title.json",
        "chat_member.json",
    ]
    for name in names:
        response = await http.post(
            url, json=_update(name, chat), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 1

    replay = await http.post(
        url, json=_update(names[1], chat), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert replay.json() == {"accepted": 0, "duplicates": 1}
    ignored = await http.post(
        url,
        json=_update("my_chat_member.json", chat),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert ignored.json()["ignored"] == "my_chat_member"

    items = await eventually(lambda: _events(http, stack, tenant, chat), lambda i: len(i) == 5)
    # In the order the updates say things happened, not the order they were delivered in.
    assert [i["type"] for i in items] == [
        "message_posted",
        "message_posted",
        "member_joined",
        "group_updated",
        "member_left",
    ]
    assert all(i["platform"] == "telegram" for i in items)
    exported = (await http.get(stack.http("ingestion") + "/metrics")).text
    assert (
        'shequn_webhook_updates_total{kind="my_chat_member",outcome="ignored",platform="telegram"}'
        in exported
    )


async def test_telegram_wrong_secret_is_401_and_stores_nothing(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    chat, url = await _new_chat(http, stack, tenant)
    update = _update("message_text_entities.json", chat)
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
        assert (await http.post(url, json=update, headers=headers)).status_code == 401
    unknown = await http.post(
        stack.http("ingestion") + "/v1/webhooks/telegram/no-such-tenant",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert unknown.status_code == 404
    # A correct delivery afterwards is the first and only thing in the group's timeline.
    ok = await http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert ok.json()["accepted"] == 1

    items = await eventually(lambda: _events(http, stack, tenant, chat), lambda i: len(i) >= 1)
    await stays(lambda: _events(http, stack, tenant, chat), items)
    assert len(items) == 1


async def test_platform_credentials_are_never_shown_in_full(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url = stack.http("ingestion") + "/v1/platforms/telegram"
    await _configure_telegram(http, stack, tenant)
    shown = (await http.get(url, headers=tenant.headers("owner"))).json()
    assert shown["bot_token"] == "…" + BOT_TOKEN[-4:] and shown["secret_token"] == "…" + SECRET[-4:]
    assert BOT_TOKEN not in json.dumps(shown)
    assert (await http.get(url, headers=tenant.headers("operator"))).status_code == 403
    bad = await http.put(
        url, json={"bot_token": "nope", "secret_token": SECRET}, headers=tenant.headers("owner")
    )
    assert bad.status_code == 422 and bad.json()["field"] == "bot_token"
    wecom = await http.put(
        stack.http("ingestion") + "/v1/platforms/wecom",
        json={"corp_id": "ww1", "token": "t", "encoding_aes_key": "short", "secret": "s"},
        headers=tenant.headers("owner"),
    )
    assert wecom.status_code == 422 and wecom.json()["field"] == "encoding_aes_key"
    # Nothing of one tenant's credentials exists for another.
    from tests.conftest import create_tenant

    other = await create_tenant(stack)
    assert (await http.get(url, headers=other.headers("owner"))).status_code == 404
    # and the secret never reaches a log line
    log = (stack.state_dir.parent / f"{stack.state_dir.name}.log").read_text(errors="replace")
    assert BOT_TOKEN not in log and BOT_TOKEN.split(":")[1] not in log


async def test_webhooks_for_tenants_that_cannot_exist_cost_nothing(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """Random tenant names in webhook URLs were each looked up and cached forever (5,000 of
    8,000 characters grew ingestion by 36 MB)."""
    base = stack.http("ingestion") + "/v1/webhooks"

    async def strangers(count: int) -> None:
        for start in range(0, count, 50):
            names = [uuid.uuid4().hex * 250 for _ in range(min(50, count - start))]
            answers = await asyncio.gather(
                *(
                    http.post(f"{base}/telegram/{n}", json={"update_id": 1})
                    if i % 2
                    else http.get(
                        f"{base}/wecom/{n}",
                        params={
                            "msg_signature": "x",
                            "timestamp": "1",
                            "nonce": "n",
                            "echostr": "e",
                        },
                    )
                    for i, n in enumerate(names)
                )
            )
            assert {a.status_code for a in answers} == {404}

    await strangers(200)  # warm up: the allocator's own growth is not what is measured
    before = stack.memory_kib("ingestion")
    await strangers(3000)
    grown = stack.memory_kib("ingestion") - before
    assert grown < 5_000, f"ingestion grew by {grown} KiB"


async def test_updates_no_consumer_could_take_are_refused_not_published(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """Each of these was accepted and then dead-lettered by every consumer."""
    chat, url = await _new_chat(http, stack, tenant)
    base = _update("message_text_entities.json", chat)

    def update(message_id: int, **message: Any) -> dict[str, Any]:
        return {**base, "message": {**base["message"], "message_id": message_id, **message}}

    mentions = "@ab " * 1001
    spoiled = {
        "occurred_at: more than 600 s after": update(1, date=int(time.time()) + 86_400),
        "message_posted.message.text: at most 20000 characters": update(
            2, text="x" * 25_000, entities=[]
        ),
        "message_posted.member.name: at most 20000 characters": update(
            3, **{"from": {**base["message"]["from"], "first_name": "A" * 30_000}}
        ),
        "message_posted.message.mentions: at most 1000 entries": update(
            4,
            text=mentions,
            entities=[{"offset": 4 * i, "length": 3, "type": "mention"} for i in range(1001)],
        ),
    }
    before = await dead_lettered(http, stack)
    for error, spoilt in spoiled.items():
        answer = await http.post(
            url, json=spoilt, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        # 200, or Telegram would send it again and again.
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 0
        [said] = answer.json()["rejected"]
        assert said.startswith(error), said
    fine = await http.post(url, json=update(5), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert fine.json() == {"accepted": 1, "duplicates": 0}

    [only] = await eventually(lambda: _events(http, stack, tenant, chat), lambda i: len(i) >= 1)
    assert only["event_id"] == f"tg:{chat}:5"
    await stays(lambda: _events(http, stack, tenant, chat), [only])
    assert await dead_lettered(http, stack) == before
