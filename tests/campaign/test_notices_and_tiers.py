"""Group notices and the tier ladder against the real stack: a series' groups whose notice
drifts are listed and their owners reminded once; a member whose purchases lift their tier
(engagement's) is invited up the ladder once."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.clients import actions_in, joined, post_events
from tests.conftest import Stack, Tenant
from tests.waiting import eventually, stays


def _created(group: str, tags: list[str], **info: Any) -> dict[str, Any]:
    return {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": group,
            "group": {"name": group, "owner_id": "s-owner", "tags": tags, **info}}  # fmt: skip


async def test_drifted_notices_are_listed_and_their_owners_reminded_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    tag = f"series-{uuid.uuid4().hex[:6]}"
    kept, unknown, drifted = (f"g-{n}-{uuid.uuid4().hex[:6]}" for n in ("kept", "unk", "drift"))
    await post_events(http, stack, tenant, [
        _created(kept, [tag], notice="群规：禁止广告"),
        _created(unknown, [tag]),
        _created(drifted, [tag], notice="旧群规"),
    ])  # fmt: skip
    url, operator = stack.http("campaign"), tenant.headers("operator")

    async def drift() -> Any:
        page = await http.get(f"{url}/v1/notice-drift", headers=tenant.headers())
        return [(g["group_id"], g["reported"]) for g in page.json()["groups"]]

    async def put() -> None:
        done = await http.put(f"{url}/v1/notices/{tag}", json={"text": "群规：禁止广告"},
                              headers=operator)  # fmt: skip
        assert done.status_code == 200, done.text

    await eventually(
        lambda: http.get(f"{url}/v1/directory/groups", params={"tag": tag},
                         headers=tenant.headers()),
        lambda a: len(a.json()["groups"]) == 3,
    )  # fmt: skip
    await put()
    assert sorted(await drift()) == sorted([(unknown, None), (drifted, "旧群规")])
    reminders = await eventually(
        lambda: actions_in(http, stack, tenant, drifted, source="campaign"),
        lambda a: len(a) == 1 and a[0]["status"] != "pending",
    )
    assert reminders[0]["type"] == "remind_staff" and reminders[0]["member"]["id"] == "s-owner"
    assert "群规：禁止广告" in reminders[0]["text"] and reminders[0]["status"] == "delivered"
    await put()  # the same drift: no second reminder
    await stays(lambda: _count(http, stack, tenant, drifted), 1, for_seconds=2)

    fixed = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_updated", "group_id": drifted,
             "group": {"notice": "群规：禁止广告"}}  # fmt: skip
    await post_events(http, stack, tenant, fixed)
    await eventually(drift, lambda d: d == [(unknown, None)])
    assert await actions_in(http, stack, tenant, unknown, source="campaign") == []


async def _count(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group: str) -> int:
    return len(await actions_in(http, stack, tenant, group, source="campaign"))


async def test_a_member_who_starts_buying_is_invited_up_the_ladder_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    pond, mid = f"g-pond-{uuid.uuid4().hex[:6]}", f"g-mid-{uuid.uuid4().hex[:6]}"
    member = f"u-{uuid.uuid4().hex[:6]}"
    await post_events(http, stack, tenant, [
        _created(pond, ["鱼塘群"]), _created(mid, ["中转群"]), joined(pond, member),
    ])  # fmt: skip
    url, admin = stack.http("campaign"), tenant.headers("admin")
    codes = {}
    for name, group in (("pond", pond), ("mid", mid)):
        codes[name] = f"lc-{name}-{uuid.uuid4().hex[:6]}"
        made = await http.post(f"{url}/v1/livecodes", json={"code": codes[name],
                               "groups": [group]}, headers=admin)  # fmt: skip
        assert made.status_code == 201
    ladder = {"rungs": [{"tag": "鱼塘群", "livecode": codes["pond"]},
                        {"tag": "中转群", "livecode": codes["mid"], "tier": "buyer"}]}  # fmt: skip
    unknown = {"rungs": [{"tag": "x", "livecode": "lc-none"}]}
    refused = await http.put(f"{url}/v1/tiers", json=unknown, headers=admin)
    assert (refused.status_code, refused.json()["field"]) == (404, "rungs.0.livecode")
    assert (await http.put(f"{url}/v1/tiers", json=ladder, headers=admin)).status_code == 200

    def order() -> dict[str, Any]:
        return {"event_id": f"ev-{uuid.uuid4().hex}", "type": "order_placed", "group_id": pond,
                "member": {"id": member, "name": "小红"},
                "order": {"id": f"o-{uuid.uuid4().hex[:6]}", "amount": 199.0}}  # fmt: skip

    await post_events(http, stack, tenant, order())
    [invited] = await eventually(
        lambda: actions_in(http, stack, tenant, pond, source="campaign"), lambda a: len(a) == 1
    )
    assert invited["text"].startswith("恭喜 小红 升级为消费会员！诚邀你加入「中转群」")
    assert invited["text"].endswith(f"/v1/livecodes/{codes['mid']}/scan")
    await post_events(http, stack, tenant, order())  # still a buyer: nothing more
    await stays(lambda: _count(http, stack, tenant, pond), 1, for_seconds=3)
