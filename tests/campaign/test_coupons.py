"""Coupons (API.md "Campaign"): a stock of unique codes issued at most once each, never beyond
the stock under concurrency; the same issue asked again answers the same code; redemptions from
`coupon_redeemed` events; engagement's welcome hook gives newcomers the entry coupon once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.campaign.blacklist import Blacklist
from services.campaign.coupon import Coupon
from services.campaign.coupons import CODES, ISSUES, Coupons
from services.gen.shequn.v1 import decisions_pb2
from services.runtime.instants import stamp
from services.runtime.store import Store
from tests.clients import joined, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.kafka import produce
from tests.waiting import eventually, stays


async def _coupon(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, stock: int) -> str:
    body = {"name": "进群礼 5 元券", "value": 5, "stock": stock, "valid_days": 7}
    made = await http.post(
        stack.http("campaign") + "/v1/coupons", json=body, headers=tenant.headers("admin")
    )
    assert made.status_code == 201, made.text
    return str(made.json()["coupon_id"])


async def _read(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, coupon: str) -> Any:
    found = await http.get(
        stack.http("campaign") + f"/v1/coupons/{coupon}", headers=tenant.headers()
    )
    return found.json()


async def test_concurrent_issues_never_go_beyond_the_stock_and_codes_are_unique(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    coupon = await _coupon(http, stack, tenant, stock=50)
    url = stack.http("campaign") + f"/v1/coupons/{coupon}/issues"

    async def issue(i: int) -> httpx.Response:
        body = {"member_id": f"u-{i}", "issue_id": f"reward-{i}"}
        return await http.post(url, json=body, headers=tenant.headers("operator"))

    answers = await asyncio.gather(*(issue(i) for i in range(200)))
    issued = [a.json() for a in answers if a.status_code == 200]
    refused = [a.json() for a in answers if a.status_code != 200]
    assert len(issued) == 50 and len({i["code"] for i in issued}) == 50
    assert refused == [{"error": "sold_out"}] * 150
    assert await _read(http, stack, tenant, coupon) | {"name": ""} == {
        "coupon_id": coupon, "name": "", "value": 5.0, "stock": 50, "valid_days": 7,
        "issued": 50, "remaining": 0, "redeemed": 0,
    }  # fmt: skip

    # The same issue again: the same code; its id for another member: refused.
    first = issued[0]
    again = await issue(int(first["member_id"].removeprefix("u-")))
    assert again.json() == first
    other = {"member_id": "u-x", "issue_id": first["issue_id"]}
    taken = await http.post(url, json=other, headers=tenant.headers("operator"))
    assert taken.status_code == 409 and taken.json()["field"] == "issue_id"
    expires = datetime.fromisoformat(first["expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)

    # Redeemed once, however often the shop says so; a code not issued here changes nothing.
    redeemed = {"type": "coupon_redeemed", "group_id": "g-shop", "member": {"id": "u-1"}}
    uses = [
        {**redeemed, "event_id": f"ev-{uuid.uuid4().hex}", "coupon": {"id": code, "value": 5}}
        for code in (first["code"], first["code"], "NOT-OURS")
    ]
    await post_events(http, stack, tenant, uses)
    await eventually(lambda: _read(http, stack, tenant, coupon), lambda c: c["redeemed"] == 1)
    await stays(lambda: _redeemed(http, stack, tenant, coupon), 1, for_seconds=2)

    # Another tenant's key finds none of it.
    theirs = (await create_tenant(stack)).headers("admin")
    mine = stack.http("campaign") + f"/v1/coupons/{coupon}"
    assert (await http.get(mine, headers=theirs)).status_code == 404
    assert (await http.post(url, json=other, headers=theirs)).status_code == 404


async def _redeemed(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, coupon: str) -> int:
    return int((await _read(http, stack, tenant, coupon))["redeemed"])


async def test_an_issue_left_without_its_code_is_finished_by_the_next_ask(stack: Stack) -> None:
    """The process died after taking a code and before writing it into the issue: asking again
    answers that code, and takes no other."""
    store = Store(stack.mongo, f"shequn_test_coupons_{uuid.uuid4().hex[:8]}")
    coupons = Coupons(store, Blacklist(store))
    try:
        coupon_id = await coupons.create("t-1", Coupon(name="券", value=1, stock=3))
        key = f"t-1:{coupon_id}"
        long_ago = stamp(datetime.now(UTC) - timedelta(minutes=1))
        issue = f"{key}:api:r-1"
        await store[ISSUES].insert_one(
            {"_id": issue, "member_id": "u-1", "claim": "dead", "at": long_ago}
        )
        taken = {"holder": issue, "member_id": "u-1", "issued_at": long_ago, "expires_at": 1}
        held = await store[CODES].find_one_and_update(
            {"free": key}, {"$unset": {"free": ""}, "$set": taken}
        )
        assert held is not None
        found = await coupons.issue("t-1", coupon_id, "u-1", "api:r-1")
        counted = await coupons.get("t-1", coupon_id)
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()
    assert found["code"] == held["code"]
    assert (counted["issued"], counted["remaining"]) == (1, 2)


async def test_newcomers_welcomed_get_the_entry_coupon_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    coupon = await _coupon(http, stack, tenant, stock=10)
    welcome = {"hold_seconds": 0, "combine_window_seconds": 0, "entry_coupon": coupon}
    response = await http.put(
        stack.http("engagement") + "/v1/engagement/settings",
        json={"welcome": welcome},
        headers=tenant.headers("admin"),
    )
    assert response.status_code == 200, response.text
    group = f"g-{uuid.uuid4().hex[:6]}"
    await post_events(http, stack, tenant, [joined(group, "u-1"), joined(group, "u-2")])
    await eventually(lambda: _read(http, stack, tenant, coupon), lambda c: c["issued"] == 2)
    # Back after leaving: welcomed again, no second coupon.
    left = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "member_left", "group_id": group,
            "member": {"id": "u-1"}, "reason": "quit"}  # fmt: skip
    await post_events(http, stack, tenant, [left])
    await asyncio.sleep(1)
    await post_events(http, stack, tenant, [joined(group, "u-1")])
    await stays(lambda: _issued(http, stack, tenant, coupon), 2, for_seconds=4)


async def _issued(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, coupon: str) -> int:
    return int((await _read(http, stack, tenant, coupon))["issued"])


async def test_a_blacklisted_member_gets_no_coupon_until_unbanned(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """Campaign learns the blacklist from moderation's decisions (its own projection)."""
    coupon = await _coupon(http, stack, tenant, stock=500)  # for asks before the list has it
    url = stack.http("campaign") + f"/v1/coupons/{coupon}/issues"
    member, now = f"u-{uuid.uuid4().hex[:6]}", datetime.now(UTC)

    async def decide(blacklisted: bool, at: datetime, rule: str) -> None:
        decision = decisions_pb2.Decision(
            decision_id=f"d-{uuid.uuid4().hex}", tenant_id=tenant.id, group_id="g-1",
            member_id=member, rule=rule, blacklisted=blacklisted,
        )  # fmt: skip
        decision.decided_at.FromDatetime(at)
        key = f"{tenant.id}:g-1".encode()
        await produce(stack.kafka, [("shequn.decisions.v1", key, decision.SerializeToString())])

    async def ask() -> httpx.Response:
        return await http.post(url, json={"member_id": member}, headers=tenant.headers("operator"))

    await decide(True, now, "ad")
    refused = await eventually(ask, lambda a: a.status_code == 409)
    assert refused.json() == {"error": "member_id: blacklisted", "field": "member_id"}
    await decide(False, now + timedelta(minutes=1), "unban")
    await decide(True, now - timedelta(minutes=1), "ad")  # late, older: changes nothing
    given = await eventually(ask, lambda a: a.status_code == 200)
    assert given.json()["member_id"] == member
