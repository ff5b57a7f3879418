"""WeCom join ways of live codes against the real stack and a stand-in WeCom: a live code of
WeCom groups is a join way of its first five groups with room, its state the code's name;
joins that fill a group rotate the list (an update of the same join way), from the events."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.clients import post_events
from tests.conftest import Stack, Tenant
from tests.fakes import FakeWecom
from tests.waiting import eventually


def _wecom(kind: str, group_id: str, **body: Any) -> dict[str, Any]:
    return {"event_id": f"ev-{uuid.uuid4().hex}", "type": kind, "group_id": group_id,
            "platform": "wecom", **body}  # fmt: skip


async def test_a_wecom_live_code_rotates_its_join_way_as_groups_fill(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, wecom: FakeWecom
) -> None:
    groups = [f"wr{i}{uuid.uuid4().hex[:6]}" for i in range(7)]
    await post_events(http, stack, tenant, [
        _wecom("group_created", g, group={"name": g, "owner_id": "s-1"}) for g in groups
    ])  # fmt: skip
    url = stack.http("campaign") + "/v1/livecodes"

    async def known() -> int:
        found = await http.get(stack.http("campaign") + "/v1/directory/groups",
                               headers=tenant.headers())  # fmt: skip
        return len(found.json()["groups"])

    await eventually(known, lambda n: n == 7)
    code = f"lc-{uuid.uuid4().hex[:8]}"
    body = {"code": code, "groups": groups, "capacity": 2, "room_base_name": "福利群"}
    made = await http.post(url, json=body, headers=tenant.headers("operator"))
    assert made.status_code == 201, made.text

    async def way() -> Any:
        return (await http.get(f"{url}/{code}", headers=tenant.headers())).json()["wecom_join_way"]

    first = await eventually(way, lambda w: w and w["state"] == "synced")
    assert first["groups"] == groups[:5] and first["config_id"] == "config-1"
    assert first["qr_code"] == "https://wework.qpic.cn/wwpic/config-1"
    [added] = [c.params for c in wecom.calls_to("groupchat/add_join_way")]
    assert (added["state"], added["chat_id_list"]) == (code, groups[:5])
    assert (added["auto_create_room"], added["room_base_name"]) == (1, "福利群")

    # Two people join the first group through the join way: it is full.
    await post_events(http, stack, tenant, [
        _wecom("member_joined", groups[0], member={"id": f"wm-{i}"}, scene="livecode",
               livecode=code)
        for i in range(2)
    ])  # fmt: skip
    rotated = await eventually(way, lambda w: w["groups"] == groups[1:6] and w["state"] == "synced")
    assert rotated["config_id"] == "config-1"  # the same join way, updated
    updates = [c.params for c in wecom.calls_to("groupchat/update_join_way")]
    assert updates[-1]["chat_id_list"] == groups[1:6]
    assert len(wecom.join_ways) == 1
