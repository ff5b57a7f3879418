"""Group handover (离职继承) against the real stack and a stand-in WeCom: a leaver's groups
pass in calls of at most 100, at most 300 of the leaver's a day (the rest the next day), the
groups WeCom refuses tried again in later calls and, refused every time, reported failed with
WeCom's reason; on the sim platform the owner simply changes. Campaign's directory follows the
owner changes the platforms report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx

from tests.clients import post_events
from tests.conftest import Stack, Tenant
from tests.fakes import FakeWecom
from tests.waiting import eventually


async def _groups(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, count: int, owner: str, platform: str
) -> list[str]:
    groups = [f"g-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    created = [
        {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": g,
         "platform": platform, "group": {"name": g, "owner_id": owner}}
        for g in groups
    ]  # fmt: skip
    for start in range(0, count, 500):
        await post_events(http, stack, tenant, created[start : start + 500])
    return sorted(groups)


async def _owners(http: httpx.AsyncClient, stack: Stack, tenant: Tenant) -> dict[str, int]:
    found: dict[str, int] = {}
    after = None
    while True:
        page = (await http.get(
            stack.http("campaign") + "/v1/directory/groups",
            params={"limit": 500, **({"after": after} if after else {})},
            headers=tenant.headers(),
        )).json()  # fmt: skip
        for g in page["groups"]:
            found[g["owner_id"]] = found.get(g["owner_id"], 0) + 1
        if not (after := page["next"]):
            return found


async def _start(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, body: Any) -> Any:
    made = await http.post(stack.http("campaign") + "/v1/handovers", json=body,
                           headers=tenant.headers("admin"))  # fmt: skip
    assert made.status_code == 201, made.text
    return made.json()


async def _get(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, handover: str) -> Any:
    url = stack.http("campaign") + f"/v1/handovers/{handover}"
    return (await http.get(url, headers=tenant.headers())).json()


async def test_wecom_groups_pass_100_a_call_and_refused_ones_are_tried_again(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, wecom: FakeWecom
) -> None:
    groups = await _groups(http, stack, tenant, 150, "s-leaver", "wecom")
    await _groups(http, stack, tenant, 2, "s-other", "wecom")
    await eventually(lambda: _owners(http, stack, tenant), lambda o: o.get("s-leaver") == 150)
    flaky, stubborn = groups[3], groups[7]
    wecom.refuse = {flaky: 1, stubborn: 99}
    body = {"from_owner": "s-leaver", "to_owner": "s-heir", "handover_id": "leave-1"}
    started = await _start(http, stack, tenant, body)
    handover = started["handover_id"]
    assert len(started["groups"]) == 150
    again = await _start(http, stack, tenant, body)  # the same client id: the first handover
    assert again["handover_id"] == handover

    def settled(h: Any) -> bool:
        return bool(h["counts"]["pending"] == h["counts"]["sending"] == 0)

    done = await eventually(lambda: _get(http, stack, tenant, handover), settled, within=60)
    assert done["counts"] == {"pending": 0, "sending": 0, "transferred": 149, "failed": 1}
    [failed] = [g for g in done["groups"] if g["state"] == "failed"]
    assert (failed["group_id"], failed["attempts"]) == (stubborn, 3)
    assert failed["reason"].startswith("wecom 90500")
    calls = [c.params for c in wecom.calls_to("groupchat/transfer")]
    # The first two batches go at once, the retries after the result they retry (on other
    # partitions: in any order with the rest).
    assert sorted(len(c["chat_id_list"]) for c in calls) == [1, 2, 50, 100]
    assert [c["chat_id_list"] for c in calls if len(c["chat_id_list"]) < 50] == [
        sorted([flaky, stubborn]),
        [stubborn],
    ]
    assert {c["new_owner"] for c in calls} == {"s-heir"}
    assert sum(len(c["chat_id_list"]) for c in calls) == 153  # within the day's 300
    owners = await eventually(
        lambda: _owners(http, stack, tenant), lambda o: o.get("s-heir") == 149
    )
    assert owners == {"s-heir": 149, "s-leaver": 1, "s-other": 2}


async def test_beyond_300_a_day_the_rest_waits_for_tomorrow(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, wecom: FakeWecom
) -> None:
    await _groups(http, stack, tenant, 350, "s-busy", "wecom")
    await eventually(lambda: _owners(http, stack, tenant), lambda o: o.get("s-busy") == 350)
    started = await _start(http, stack, tenant, {"from_owner": "s-busy", "to_owner": "s-2"})

    def today_done(h: Any) -> bool:
        return bool(h["counts"]["transferred"] == 300)

    done = await eventually(
        lambda: _get(http, stack, tenant, started["handover_id"]), today_done, within=60
    )
    assert done["counts"]["pending"] == 50
    tomorrow = datetime.fromisoformat(done["next_batch_at"])
    assert (tomorrow.hour, tomorrow.minute) == (16, 0)  # midnight in Shanghai, in UTC
    calls = [len(c.params["chat_id_list"]) for c in wecom.calls_to("groupchat/transfer")]
    assert calls == [100, 100, 100]


async def test_sim_groups_change_owner_and_unknown_names_are_refused(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    groups = await _groups(http, stack, tenant, 3, "s-a", "sim")
    await eventually(lambda: _owners(http, stack, tenant), lambda o: o.get("s-a") == 3)
    unknown = await http.post(
        stack.http("campaign") + "/v1/handovers",
        json={"from_owner": "s-a", "to_owner": "s-b", "groups": [*groups, "g-never"]},
        headers=tenant.headers("admin"),
    )
    assert (unknown.status_code, unknown.json()["field"]) == (422, "groups")
    nobody = await http.post(
        stack.http("campaign") + "/v1/handovers",
        json={"from_owner": "s-nobody", "to_owner": "s-b"}, headers=tenant.headers("admin"),
    )  # fmt: skip
    assert (nobody.status_code, nobody.json()["field"]) == (422, "from_owner")
    started = await _start(http, stack, tenant, {"from_owner": "s-a", "to_owner": "s-b"})
    done = await eventually(
        lambda: _get(http, stack, tenant, started["handover_id"]),
        lambda h: h["counts"]["transferred"] == 3,
    )
    assert [b["platform"] for b in done["batches"]] == ["PLATFORM_SIM"]
    await eventually(lambda: _owners(http, stack, tenant), lambda o: o == {"s-b": 3})
