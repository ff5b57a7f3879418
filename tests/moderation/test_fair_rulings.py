"""Rulings that make sense for the people in a group: the staff may post their deals, nobody is
immune for being blacklisted, tenants never count each other's events, and the blacklist's own
operations (by hand, unban) are decisions that every service learns, safe to retry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from cachetools import LRUCache

from services.gen.shequn.v1 import decisions_pb2, events_pb2
from services.moderation.judge import MemberState
from services.moderation.pictures import Pictures
from services.moderation.pipeline import DECISIONS, Moderation
from services.moderation.rulesets import RULESETS, Rulesets
from services.runtime.bus import Producer, ensure_topics
from services.runtime.consumer import Record
from services.runtime.settings import Settings
from services.runtime.store import Store
from tests.clients import dead_lettered, joined, message, post_events
from tests.conftest import Stack, Tenant
from tests.kafka import read_topic
from tests.moderation.test_moderation import decisions
from tests.waiting import eventually, stays

DEAL = "今日特价 https://shop-deals.example.com/p/1 加微信 shop_8888 下单"


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


async def _put_ruleset(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, body: dict[str, Any], group: str = ""
) -> None:
    path = f"/v1/rulesets/groups/{group}" if group else "/v1/rulesets/default"
    response = await http.put(stack.http("moderation") + path, json=body, headers=tenant.headers())
    assert response.status_code == 200, response.text


async def test_owners_and_admins_may_post_their_deals_unless_the_ruleset_says_otherwise(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = _group()
    shop = message(group, "u-shop", DEAL, member={"id": "u-shop", "name": "店长", "role": "owner"})
    helper = message(group, "u-adm", DEAL, member={"id": "u-adm", "role": "admin"})
    member = message(group, "u-m", DEAL)
    await post_events(http, stack, tenant, [shop, helper, member])
    found = await eventually(lambda: decisions(http, stack, tenant, group_id=group), bool)
    assert [d["member_id"] for d in found] == ["u-m"]
    await stays(lambda: decisions(http, stack, tenant, group_id=group), found)

    await _put_ruleset(http, stack, tenant, {"content_exempt_roles": []})
    again = message(group, "u-shop", DEAL, member={"id": "u-shop", "role": "owner"})
    await post_events(http, stack, tenant, again)
    found = await eventually(
        lambda: decisions(http, stack, tenant, member_id="u-shop"), lambda d: len(d) == 1
    )
    assert found[0]["rule"] == "ad"


async def test_a_blacklisted_member_still_in_a_group_is_judged(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """Blacklisted while still in a group (by hand, or in another group; WeCom cannot kick), or
    in a group with the blacklist off: such a member's ads were never judged."""
    stays_in, lenient = _group(), _group()
    spammer = f"u-{uuid.uuid4().hex[:6]}"
    await _put_ruleset(http, stack, tenant, {"blacklist": False}, group=lenient)
    await post_events(http, stack, tenant, [joined(stays_in, spammer)])
    added = await http.put(
        stack.http("moderation") + f"/v1/blacklist/{spammer}",
        json={"reason": "广告号"},
        headers=tenant.headers("admin"),
    )
    assert added.status_code == 200, added.text
    await post_events(http, stack, tenant, [joined(lenient, spammer)])
    await post_events(http, stack, tenant, [message(stays_in, spammer, DEAL)])
    await post_events(http, stack, tenant, [message(lenient, spammer, DEAL)])
    found = await eventually(
        lambda: decisions(http, stack, tenant, member_id=spammer),
        lambda d: {x["group_id"] for x in d} >= {stays_in, lenient},
    )
    judged = {d["group_id"] for d in found if d["rule"] != "manual"}
    assert judged == {stays_in, lenient}
    assert [d["rule"] for d in found if d["group_id"] == ""] == ["manual"]


async def test_blacklist_entries_by_hand_and_unbans_are_decisions_and_retries_change_nothing(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = _group()
    spammer = f"u-{uuid.uuid4().hex[:6]}"
    before = await dead_lettered(http, stack)
    url = stack.http("moderation") + f"/v1/blacklist/{spammer}"
    first = await http.put(url, json={"reason": "广告号"}, headers=tenant.headers("admin"))
    second = await http.put(url, json={"reason": "广告号"}, headers=tenant.headers("admin"))
    assert first.json()["decision_id"] == second.json()["decision_id"], "asked again: the same"

    def of_member(m: Any) -> bool:
        return decisions_pb2.Decision.FromString(m.value).member_id == spammer

    [published, *_] = await read_topic(stack.kafka, "shequn.decisions.v1", 1, of_member)
    manual = decisions_pb2.Decision.FromString(published.value)
    assert (manual.rule, manual.blacklisted, manual.group_id) == ("manual", True, "")
    assert manual.decision_id == first.json()["decision_id"]

    # Removed on joining; then unbanned twice (a client's retry): the group is told once.
    await post_events(http, stack, tenant, [joined(group, spammer)])
    await eventually(lambda: _kicks(http, stack, tenant, group), lambda n: n == 1)
    answers = [await http.delete(url, headers=tenant.headers("admin")) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json() == {
        "member_id": spammer, "unbanned": True, "groups_told": 1,
    }  # fmt: skip

    def unban_of_member(m: Any) -> bool:
        return of_member(m) and decisions_pb2.Decision.FromString(m.value).rule == "unban"

    unbans = await read_topic(stack.kafka, "shequn.decisions.v1", 2, unban_of_member)
    ids = {decisions_pb2.Decision.FromString(m.value).decision_id for m in unbans}
    assert len(ids) == 1 and ids.pop().startswith(f"unban:{spammer}:"), "one per request, alike"
    notices = await eventually(
        lambda: _notices(http, stack, tenant, group), lambda n: any(s != "pending" for s in n)
    )
    await stays(lambda: _notices(http, stack, tenant, group), notices)
    assert notices == ["delivered"], "one notice, delivered once"
    never = await http.delete(
        stack.http("moderation") + "/v1/blacklist/u-never", headers=tenant.headers("admin")
    )
    assert never.status_code == 404
    assert await dead_lettered(http, stack) == before


async def _kicks(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group: str) -> int:
    from tests.ingestion.test_delivery import timeline

    return sum(1 for i in await timeline(http, stack, tenant, group) if i["type"] == "kick_member")


async def _notices(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group: str) -> list[str]:
    from tests.ingestion.test_delivery import timeline

    items = await timeline(http, stack, tenant, group)
    return [i["status"] for i in items if i["type"] == "send_text" and "黑名单" in i["text"]]


def _posted(tenant_id: str, group: str, event_id: str, text: str) -> Record[events_pb2.Event]:
    event = events_pb2.Event(event_id=event_id, tenant_id=tenant_id, group_id=group)
    event.occurred_at.FromDatetime(datetime.now(UTC))
    event.message_posted.member.id = "u-1"
    event.message_posted.message.text = text
    return Record("events", 0, 0, None, b"", event)


@asynccontextmanager
async def _moderation(stack: Stack) -> AsyncIterator[tuple[Moderation, Store]]:
    """The moderation consumer's handler in this process, on a database of its own."""
    prefix = f"fair{uuid.uuid4().hex[:8]}"
    settings = Settings(
        kafka_bootstrap=stack.kafka, mongo_url=stack.mongo, mongo_db_prefix=f"{prefix}_",
        topic_actions=f"{prefix}.actions", topic_decisions=f"{prefix}.decisions",
    )  # fmt: skip
    await ensure_topics(settings, [settings.topic_actions, settings.topic_decisions])
    store = Store(stack.mongo, settings.database_name("moderation"))
    producer = Producer(settings)
    await producer.start()
    pictures = Pictures(settings)
    try:
        yield Moderation(store, producer, settings, Rulesets(store[RULESETS]), pictures), store
    finally:
        await producer.stop()
        await pictures.close()
        await store.client.drop_database(store.db.name)
        await store.close()


async def test_tenants_using_the_same_event_ids_do_not_count_each_others_posts(
    stack: Stack,
) -> None:
    """One batch, two tenants, the same event ids: tenant a posts one text in three groups
    (cross-group spam at the third), tenant b posts another text once. Cross-group counts were
    kept by bare event id, so b's third message took a's count."""
    async with _moderation(stack) as (moderation, store):
        ids = ["e-1", "e-2", "e-3"]
        batch = [_posted("b", f"g-{i}", e, f"周末一起去爬山吗 第{i}次") for i, e in enumerate(ids)]
        batch += [_posted("a", f"g-{i}", e, "全场五折 限时抢购 快来") for i, e in enumerate(ids)]
        await moderation.handle(batch)
        found = await store[DECISIONS].find({}).to_list(None)
    assert [(d["tenant_id"], d["event_id"], d["rule"]) for d in found] == [
        ("a", "e-3", "cross_group")
    ]


async def test_moderation_keeps_in_memory_only_what_it_judges_by(stack: Stack) -> None:
    """Memberships and groups are kept in memory while their partitions are held: as judging
    reads them, not as whole documents (names, inviters, clocks)."""
    async with _moderation(stack) as (moderation, _):
        join = _posted("t", "g-1", "e-1", "")
        join.value.ClearField("message_posted")
        join.value.member_joined.member.id, join.value.member_joined.member.name = "u-1", "小王"
        join.value.member_joined.inviter.id = "u-0"
        await moderation.handle([join])
        await moderation.handle([_posted("t", "g-1", "e-2", "大家好")])
    assert {k: v for k, v in moderation.memberships.items() if v} == {
        "t:g-1:u-1": MemberState("member", (), join.value.occurred_at.ToDatetime(UTC))
    }


async def test_a_full_memory_of_memberships_serves_a_batch_that_reads_more(stack: Stack) -> None:
    """Memberships read for a batch push the oldest ones out of a full memory: never one the
    same batch takes from it."""
    async with _moderation(stack) as (moderation, _):
        moderation.memberships = LRUCache(5)
        for i in range(1, 6):
            moderation.memberships[f"t:g-1:u-{i}"] = MemberState("admin") if i % 2 else None
        batch = [_posted("t", "g-1", f"e-{i}", "大家好") for i in range(1, 11)]
        for i, record in enumerate(batch, start=1):
            record.value.message_posted.member.id = f"u-{i}"
        await moderation.handle(batch)
        assert set(moderation.memberships) == {f"t:g-1:u-{i}" for i in range(6, 11)}
