"""Welcomes through the running services: the tenant's template with the group's name and
rules, one combined welcome for a burst of newcomers, none for a member moderation kicks on
arrival (learned from its decisions), a template refused for an unknown placeholder."""

from __future__ import annotations

import uuid

import httpx

from tests.clients import actions_in, joined, post_events
from tests.conftest import Stack, Tenant
from tests.waiting import eventually, stays

AT = "2026-12-01T04:00:{:02d}Z"
WELCOME = {
    "template": "欢迎 {nickname} 加入{group_name}！{rules}",
    "rules": "请勿发广告",
    "hold_seconds": 5,  # long enough for moderation's decision on a busy machine
}


async def test_a_burst_of_newcomers_gets_one_welcome_without_the_one_kicked_on_arrival(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    admin = tenant.headers("admin")
    settings = stack.http("engagement") + "/v1/engagement/settings"
    put = await http.put(settings, json={"welcome": WELCOME}, headers=admin)
    assert put.status_code == 200, put.text
    spammer = f"u-{uuid.uuid4().hex[:6]}"
    listed = await http.put(stack.http("moderation") + f"/v1/blacklist/{spammer}", headers=admin)
    assert listed.status_code == 200, listed.text
    burst, quiet = f"g-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    created = {
        "event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": burst,
        "group": {"name": "福利1群"}, "occurred_at": AT.format(0),
    }  # fmt: skip
    newcomers = [
        {**joined(burst, m, occurred_at=AT.format(s)), "member": {"id": m, "name": n}}
        for m, n, s in [("u-a", "阿青", 20), ("u-b", "小白", 5), (spammer, "推广", 8)]
    ]
    late = {**joined(burst, "u-c", occurred_at=AT.format(40)), "member": {"id": "u-c", "name": "C"}}
    await post_events(http, stack, tenant, [created, *newcomers])
    await post_events(http, stack, tenant, [late, newcomers[0]])  # the first one again
    await post_events(http, stack, tenant, [joined(quiet, "u-d", occurred_at=AT.format(1))])

    [welcome] = await eventually(lambda: actions_in(http, stack, tenant, burst), bool)
    assert welcome["text"] == "欢迎 小白、阿青、C 加入福利1群！请勿发广告", welcome
    assert welcome["type"] == "send_text"
    await stays(lambda: _texts(http, stack, tenant, burst), [welcome["text"]])
    [single] = await eventually(lambda: actions_in(http, stack, tenant, quiet), bool)
    assert single["text"] == "欢迎 u-d 加入！请勿发广告"


async def test_a_template_with_an_unknown_placeholder_is_refused(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    settings = stack.http("engagement") + "/v1/engagement/settings"
    bad = {"welcome": {"template": "欢迎 {name}"}}
    refused = await http.put(settings, json=bad, headers=tenant.headers("admin"))
    assert refused.status_code == 422 and refused.json()["field"] == "welcome.template"
    assert "{nickname}" in refused.json()["error"]


async def _texts(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group: str) -> list[str]:
    return [a["text"] for a in await actions_in(http, stack, tenant, group)]


async def test_a_clean_welcome_deletes_the_one_before(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    settings = stack.http("engagement") + "/v1/engagement/settings"
    clean = {"welcome": {"combine_window_seconds": 0, "hold_seconds": 0, "clean": True}}
    put = await http.put(settings, json=clean, headers=tenant.headers("admin"))
    assert put.status_code == 200, put.text
    group = f"g-{uuid.uuid4().hex[:6]}"
    await post_events(http, stack, tenant, [joined(group, "u-1", occurred_at=AT.format(1))])
    [first] = await eventually(
        lambda: actions_in(http, stack, tenant, group),
        lambda a: len(a) == 1 and a[0].get("status") == "delivered",
    )
    await post_events(http, stack, tenant, [joined(group, "u-2", occurred_at=AT.format(30))])
    found = await eventually(
        lambda: actions_in(http, stack, tenant, group),
        lambda a: len(a) == 3 and all(x.get("status") == "delivered" for x in a),
    )
    [deletion] = [a for a in found if a["type"] == "delete_message"]
    assert deletion["action_id"] == f"engagement:welcome-cleaned:{first['action_id']}"
    assert [a["type"] for a in found].count("send_text") == 2
