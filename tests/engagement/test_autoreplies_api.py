"""Auto-replies through the running services: rules saved with their limits and overlaps, a
message answered in its group with a cooldown per rule per group, the asker tagged, each tenant
seeing only its own rules."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.clients import actions_in, group_days, message, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.waiting import eventually, stays

AT = "2026-12-01T04:00:00Z"


def _rule(*keywords: str, **fields: Any) -> dict[str, Any]:
    return {"keywords": list(keywords), "reply": {"text": "您好，价格表见群公告"}, **fields}


async def test_rules_are_limited_to_one_hundred_even_when_saved_at_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url, admin = stack.http("engagement") + "/v1/autoreplies", tenant.headers("admin")
    saved = await asyncio.gather(
        *(http.post(url, json=_rule(f"问题{i}"), headers=admin) for i in range(110))
    )
    codes = sorted(r.status_code for r in saved)
    assert codes == [201] * 100 + [422] * 10, codes
    refused = next(r for r in saved if r.status_code == 422)
    assert "at most 100" in refused.json()["error"]
    listed = (await http.get(url, headers=tenant.headers("viewer"))).json()["rules"]
    assert len(listed) == 100
    gone = await http.delete(f"{url}/{listed[0]['rule_id']}", headers=admin)
    assert gone.status_code == 204
    assert (await http.post(url, json=_rule("再来一个"), headers=admin)).status_code == 201

    too_many = await http.post(url, json=_rule(*[f"词{i}" for i in range(11)]), headers=admin)
    assert too_many.status_code == 422 and too_many.json()["field"] == "keywords"
    assert "10" in too_many.json()["error"]


async def test_a_rule_is_saved_with_its_overlaps_and_stays_in_its_tenant(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url, admin = stack.http("engagement") + "/v1/autoreplies", tenant.headers("admin")
    first = await http.post(url, json=_rule("价格"), headers=admin)
    assert first.status_code == 201 and first.json()["overlaps"] == [], first.text
    price = first.json()["rule_id"]
    second = await http.post(url, json=_rule("價格表", "发货"), headers=admin)
    assert second.json()["overlaps"] == [{"rule_id": price, "keywords": ["价格表"]}]
    mine = second.json()["rule_id"]
    replaced = await http.put(f"{url}/{mine}", json=_rule("发货"), headers=admin)
    assert replaced.status_code == 200 and replaced.json()["overlaps"] == []
    got = await http.get(f"{url}/{mine}", headers=tenant.headers("viewer"))
    assert got.json()["keywords"] == ["发货"] and got.json()["cooldown_seconds"] == 60

    assert (
        await http.post(url, json=_rule("x"), headers=tenant.headers("operator"))
    ).status_code == 403
    assert (await http.get(url)).status_code == 401
    other = await create_tenant(stack)
    theirs = other.headers("admin")
    assert (await http.get(f"{url}/{mine}", headers=theirs)).status_code == 404
    assert (await http.put(f"{url}/{mine}", json=_rule("y"), headers=theirs)).status_code == 404
    assert (await http.delete(f"{url}/{mine}", headers=theirs)).status_code == 404
    assert (await http.get(url, headers=theirs)).json()["rules"] == []
    card = {"keywords": ["官网"], "reply": {"link_card": {"title": "官网", "url": "ftp://x"}}}
    bad = await http.post(url, json=card, headers=admin)
    assert bad.status_code == 422 and bad.json()["field"].startswith("reply.link_card.url")


async def test_messages_are_answered_once_per_cooldown_and_the_asker_is_tagged(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url, admin = stack.http("engagement") + "/v1/autoreplies", tenant.headers("admin")
    await http.post(url, json=_rule("价格", cooldown_seconds=60, tag="问价"), headers=admin)
    card = {"title": "官网", "url": "https://shop.example.com/"}
    await http.post(
        url, json={"keywords": ["人工"], "mention_only": True, "reply": {"link_card": card}},
        headers=admin,
    )  # fmt: skip
    group, other_group = f"g-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    asker = f"u-{uuid.uuid4().hex[:6]}"
    asked = message(group, asker, "请问价格？", occurred_at=AT)
    later = message(group, "u-6", "价格", occurred_at="2026-12-01T04:01:00Z")  # cooled down
    await post_events(http, stack, tenant, [
        asked,
        message(group, "u-2", "價格多少", occurred_at="2026-12-01T04:00:30Z"),  # cooling down
        message(other_group, "u-3", "价格", occurred_at=AT),  # another group: its own cooldown
        message(group, "u-4", "转人工", occurred_at=AT),  # not @mentioning the assistant
        {**message(group, "u-5", "人工", occurred_at=AT), "message": {
            "id": "m-at", "kind": "text", "text": "@Shequn 人工", "mentions": ["shequn-bot"]}},
        later,
    ])  # fmt: skip
    await post_events(http, stack, tenant, [asked])  # the same message again: answered once

    def answered(found: list[dict[str, Any]]) -> bool:
        return len(found) >= 3

    replies = await eventually(lambda: actions_in(http, stack, tenant, group), answered)
    assert [r["type"] for r in replies] == ["send_text", "send_link_card", "send_text"]
    assert [replies[0]["cause_event_id"], replies[2]["cause_event_id"]] == [
        asked["event_id"],
        later["event_id"],
    ]
    assert replies[0]["text"] == "您好，价格表见群公告"
    await eventually(lambda: actions_in(http, stack, tenant, other_group), lambda r: len(r) == 1)
    await stays(lambda: _count(http, stack, tenant, group), 3)
    days = await eventually(
        lambda: group_days(http, stack, tenant, group, "2026-12-01", "2026-12-01"),
        lambda found: found["2026-12-01"]["autoreplies"] == 3,
    )
    assert days["2026-12-01"]["messages"] == 5
    profile = await http.get(
        stack.http("engagement") + f"/v1/members/{asker}/profile", headers=tenant.headers()
    )
    assert profile.json()["tags"] == ["问价"], profile.text


async def _count(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group: str) -> int:
    return len(await actions_in(http, stack, tenant, group))
