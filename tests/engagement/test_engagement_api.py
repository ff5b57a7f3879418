"""Check-ins and points through the running services: a 签到 posted over HTTP is answered in
the group and booked once a day in Shanghai's days; grants are the tenant's own, by role, and
the same grant twice changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.clients import actions_in, group_days, joined, message, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.waiting import eventually, stays

BEFORE_MIDNIGHT = "2026-11-30T15:59:00Z"  # 23:59 in Shanghai
AFTER_MIDNIGHT = "2026-11-30T16:01:00Z"  # 00:01 on 1 December there
LATER = "2026-11-30T16:05:00Z"


async def _points(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, member: str, role: str = "viewer"
) -> dict[str, Any]:
    response = await http.get(
        stack.http("engagement") + f"/v1/members/{member}/points", headers=tenant.headers(role)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _replies(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group: str) -> list[str]:
    return [i["text"] for i in await actions_in(http, stack, tenant, group)]


async def test_check_ins_across_midnight_in_shanghai_are_answered_and_booked_once_a_day(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group, member = f"g-{uuid.uuid4().hex[:6]}", f"u-{uuid.uuid4().hex[:6]}"
    posts = [
        message(group, member, "签到", occurred_at=BEFORE_MIDNIGHT),
        message(group, member, "打卡！", occurred_at=AFTER_MIDNIGHT),
        message(group, member, "签到", occurred_at=LATER),
        message(group, member, "今天也来签到了", occurred_at=LATER),
    ]
    response = await post_events(http, stack, tenant, posts)
    assert response.status_code == 202, response.text
    replies = await eventually(lambda: _replies(http, stack, tenant, group), lambda r: len(r) >= 3)
    assert replies[0] == "小明 签到成功！连续签到 1 天，累计 1 天，获得 10 积分，当前积分 10。"
    assert replies[1].startswith("小明 签到成功！连续签到 2 天，累计 2 天")
    assert "已经签到" in replies[2]
    points = await _points(http, stack, tenant, member)
    assert points["balance"] == 20
    assert [e["source"] for e in points["entries"]] == [
        f"checkin:{member}:2026-12-01",
        f"checkin:{member}:2026-11-30",
    ]
    await stays(lambda: _replies(http, stack, tenant, group), replies)

    # Engagement says each day's check-in on the events topic; analytics counts it on its day.
    def checkins(days: dict[str, dict[str, Any]]) -> list[int]:
        return [days[d]["checkins"] for d in ("2026-11-30", "2026-12-01")]

    async def days() -> dict[str, dict[str, Any]]:
        return await group_days(http, stack, tenant, group, "2026-11-30", "2026-12-01")

    await eventually(days, lambda found: checkins(found) == [1, 1])
    await stays(days, await days())


async def test_grants_are_idempotent_never_overdraw_and_stay_in_their_tenant(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url = stack.http("engagement") + "/v1/points/grants"
    member = f"u-{uuid.uuid4().hex[:6]}"

    async def grant(body: dict[str, Any], role: str = "admin", who: Tenant = tenant) -> Any:
        return await http.post(url, json=body, headers=who.headers(role))

    give = {"grant_id": "welcome-gift", "member_id": member, "points": 100, "reason": "见面礼"}
    first = await grant(give)
    assert first.status_code == 200 and first.json()["balance"] == 100, first.text
    again = await grant(give)
    assert again.status_code == 200 and again.json()["balance"] == 100
    reused = await grant({**give, "points": 5})
    assert reused.status_code == 409 and "grant_id" in reused.json()["error"]
    too_much = await grant({"grant_id": "fine-1", "member_id": member, "points": -500})
    assert too_much.status_code == 409 and too_much.json()["error"] == "insufficient_points"
    taken = await grant({"grant_id": "fine-2", "member_id": member, "points": -30})
    assert taken.json()["balance"] == 70
    assert (await grant({**give, "grant_id": "zero", "points": 0})).json()["field"] == "points"
    assert (await grant({**give, "member_id": "a:b"})).json()["field"] == "member_id"

    assert (await grant({**give, "grant_id": "by-operator"}, role="operator")).status_code == 403
    assert (await http.post(url, json=give)).status_code == 401
    other = await create_tenant(stack)
    assert (await _points(http, stack, other, member))["balance"] == 0
    assert (await _points(http, stack, other, member))["entries"] == []
    entries = (await _points(http, stack, tenant, member))["entries"]
    assert [(e["source"], e["points"]) for e in entries] == [
        ("grant:fine-2", -30),
        ("grant:welcome-gift", 100),
    ]


async def test_a_tenants_settings_and_a_groups_override_decide_what_a_check_in_is(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url = stack.http("engagement") + "/v1/engagement/settings"
    group, other_group = f"g-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    defaults = (await http.get(url, headers=tenant.headers("viewer"))).json()
    assert defaults["checkin"]["keywords"] == ["签到", "打卡"] and defaults["timezone"] is None
    settings = {"checkin": {"keywords": ["报到"], "points": 5}, "timezone": "UTC"}
    put = await http.put(url, json=settings, headers=tenant.headers("admin"))
    assert put.status_code == 200 and put.json()["checkin"]["streak_days"] == 7, put.text
    override = {"checkin": {"keywords": ["签到"], "points": 7}}
    admin = tenant.headers("admin")
    response = await http.put(f"{url}/groups/{other_group}", json=override, headers=admin)
    effective = response.json()["effective"]
    assert effective["checkin"] == {**put.json()["checkin"], **override["checkin"]}
    assert effective["timezone"] == "UTC"

    member = f"u-{uuid.uuid4().hex[:6]}"
    await post_events(http, stack, tenant, [
        message(group, member, "签到", occurred_at=BEFORE_MIDNIGHT),  # not a keyword here
        message(group, member, "报到", occurred_at=BEFORE_MIDNIGHT),
        message(group, member, "报到", occurred_at=AFTER_MIDNIGHT),  # the same day in UTC
        message(other_group, f"{member}-2", "签到", occurred_at=AFTER_MIDNIGHT),
    ])  # fmt: skip
    replies = await eventually(lambda: _replies(http, stack, tenant, group), lambda r: len(r) >= 2)
    assert "获得 5 积分" in replies[0] and "已经签到" in replies[1]
    assert (await _points(http, stack, tenant, member))["balance"] == 5
    elsewhere = await eventually(
        lambda: _points(http, stack, tenant, f"{member}-2"), lambda p: p["balance"] > 0
    )
    assert elsewhere["balance"] == 7, "the group's override"

    bad = await http.put(url, json={"timezone": "Mars/Olympus"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["field"] == "timezone"
    bad = await http.put(f"{url}/groups/{group}", json={"checkin": {"keywords": []}}, headers=admin)
    assert bad.status_code == 422 and bad.json()["field"] == "checkin.keywords"
    by_operator = await http.put(url, json=settings, headers=tenant.headers("operator"))
    assert by_operator.status_code == 403
    other = await create_tenant(stack)
    assert (await http.get(url, headers=other.headers("viewer"))).json() == defaults
    assert (await http.delete(f"{url}/groups/{other_group}", headers=admin)).status_code == 204
    assert (await http.delete(f"{url}/groups/{other_group}", headers=admin)).status_code == 404


def _order(group: str, member: str, order_id: str, amount: float) -> dict[str, Any]:
    return {
        "event_id": f"ev-{uuid.uuid4().hex}",
        "type": "order_placed",
        "group_id": group,
        "member": {"id": member, "name": "小红"},
        "order": {"id": order_id, "amount": amount},
    }


async def test_a_channel_live_code_join_tags_the_member_with_its_channel(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group, member = f"g-{uuid.uuid4().hex[:6]}", f"u-{uuid.uuid4().hex[:6]}"
    came = joined(group, member, scene="livecode", livecode="lc-1", channel="douyin")
    await post_events(http, stack, tenant, [came, {**came, "event_id": f"ev-{uuid.uuid4().hex}"}])
    url = stack.http("engagement") + f"/v1/members/{member}/profile"
    found = await eventually(
        lambda: http.get(url, headers=tenant.headers("viewer")),
        lambda r: r.status_code == 200 and r.json()["tags"],
    )
    assert found.json()["tags"] == ["渠道:douyin"]


async def test_orders_promote_a_member_buyer_then_core_and_count_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group, member = f"g-{uuid.uuid4().hex[:6]}", f"u-{uuid.uuid4().hex[:6]}"
    url = stack.http("engagement") + f"/v1/members/{member}/profile"

    async def profile() -> dict[str, Any]:
        response = await http.get(url, headers=tenant.headers("viewer"))
        return dict(response.json()) if response.status_code == 200 else {}

    assert (await http.get(url, headers=tenant.headers("viewer"))).status_code == 404
    first_order = _order(group, member, "o-1", 99.0)
    await post_events(http, stack, tenant, [message(group, member, "想买"), first_order])
    # The tier follows the counts, a moment after them.
    first = await eventually(profile, lambda p: p.get("tier") == "buyer")
    assert (first["tier"], first["spend"], first["name"]) == ("buyer", 99.0, "小红")
    # The platform reports the same order again, under another event id: counted once.
    await post_events(http, stack, tenant, _order(group, member, "o-1", 99.0))
    await post_events(http, stack, tenant, _order(group, member, "o-2", 450.0))
    second = await eventually(profile, lambda p: p.get("tier") == "core")
    assert (second["orders"], second["spend"], second["tier"]) == (2, 549.0, "core")
    assert second["tags"] == ["已购"]
    await stays(profile, second)
    other = await create_tenant(stack)
    assert (await http.get(url, headers=other.headers("viewer"))).status_code == 404
