"""Red packets through the running services: a group's daily budget is never exceeded however
many payouts are asked at once, a payout asked again pays nothing twice, and a show-your-order
picture waits for an admin's approval before it is paid."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx

from services.engagement.redpackets import RedPacketRules, is_show_order
from tests.clients import actions_in, message, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.waiting import eventually


def test_a_show_your_order_is_a_picture_with_a_keyword() -> None:
    rules = RedPacketRules()
    assert is_show_order("image", "来晒单啦", rules) and is_show_order("image", "買家秀", rules)
    assert not is_show_order("text", "晒单", rules) and not is_show_order("image", "好看", rules)


async def _group(http: httpx.AsyncClient, stack: Stack, tenant: Tenant) -> str:
    group = f"g-{uuid.uuid4().hex[:6]}"
    created = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": group}
    await post_events(http, stack, tenant, [created])
    return group


async def test_the_daily_budget_holds_under_fifty_payouts_at_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    rules = {"red_packets": {"daily_budget": 50, "task_reward": {"amount": 5}}}
    put = await http.put(
        stack.http("engagement") + "/v1/engagement/settings",
        json=rules,
        headers=tenant.headers("admin"),
    )
    assert put.status_code == 200, put.text
    group = await _group(http, stack, tenant)
    url = stack.http("engagement") + "/v1/red-packets"

    async def pay(n: int) -> httpx.Response:
        body = {
            "payout_id": f"task-{n}",
            "kind": "task_reward",
            "member_id": f"u-{n}",
            "group_id": group,
        }
        return await http.post(url, json=body, headers=tenant.headers("operator"))

    await eventually(lambda: pay(-1), lambda r: r.status_code != 404)  # the group is known
    answers = await asyncio.gather(*(pay(n) for n in range(50)))
    outcomes = Counter((r.status_code, r.json().get("error")) for r in answers)
    assert outcomes == {(200, None): 9, (409, "over_budget"): 41}, outcomes  # 9 + the first
    again = await pay(-1)
    assert again.status_code == 200 and again.json()["state"] == "paid"
    sent = await eventually(lambda: actions_in(http, stack, tenant, group), lambda a: len(a) >= 10)
    assert len(sent) == 10 and {a["type"] for a in sent} == {"send_red_packet"}
    # Each paid once is spend in analytics' campaign ROI (red_packet_paid events): 10 × ¥5.
    roi = stack.http("analytics") + f"/v1/stats/roi?group_id={group}"

    async def spent() -> int:
        answer = await http.get(roi, headers=tenant.headers("viewer"))
        return int(answer.json()["total"]["red_packet_spend"])

    await eventually(spent, lambda n: n >= 5000)
    assert await spent() == 5000


async def test_a_show_your_order_is_paid_once_an_admin_approves(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = await _group(http, stack, tenant)
    picture = message(group, "u-buyer", "晒单！很好用")
    picture["message"] |= {"kind": "image", "media_url": "https://img.example.com/1.jpg"}
    await post_events(http, stack, tenant, [picture, message(group, "u-2", "晒单")])
    url = stack.http("engagement") + "/v1/red-packets"
    waiting = await eventually(
        lambda: http.get(f"{url}/awaiting", headers=tenant.headers("viewer")),
        lambda r: len(r.json()["red_packets"]) == 1,
    )
    [shown] = waiting.json()["red_packets"]
    assert (shown["member_id"], shown["kind"], shown["state"]) == (
        "u-buyer",
        "show_order",
        "awaiting_approval",
    )
    payout = shown["payout_id"]
    by_operator = await http.post(f"{url}/{payout}/approve", headers=tenant.headers("operator"))
    assert by_operator.status_code == 403
    other = await create_tenant(stack)
    assert (
        await http.post(f"{url}/{payout}/approve", headers=other.headers("admin"))
    ).status_code == 404
    approved = await http.post(f"{url}/{payout}/approve", headers=tenant.headers("admin"))
    assert approved.status_code == 200 and approved.json()["amount"] == 8.88, approved.text
    twice = await http.post(f"{url}/{payout}/approve", headers=tenant.headers("admin"))
    assert twice.json() == approved.json()
    [sent] = await eventually(lambda: actions_in(http, stack, tenant, group), bool)
    assert sent["type"] == "send_red_packet"
    assert (await http.get(f"{url}/awaiting", headers=tenant.headers("viewer"))).json()[
        "red_packets"
    ] == []
