"""Broadcasts (API.md "Campaign"): at most 200 groups, chosen by id, series tag or owner, with
the dismissed and unknown ones skipped; live counts from the delivery results; a retried
request sends nothing twice; WeCom's quota of group messages a day."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.clients import actions_in, post_events
from tests.conftest import Stack, Tenant
from tests.fakes import FakeWecom
from tests.waiting import eventually, stays


def _created(group: str, **group_info: Any) -> dict[str, Any]:
    platform = group_info.pop("platform", "sim")
    return {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": group,
            "platform": platform, "group": group_info}  # fmt: skip


async def _send(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, body: dict[str, Any]
) -> httpx.Response:
    return await http.post(
        stack.http("campaign") + "/v1/broadcasts", json=body, headers=tenant.headers("operator")
    )


async def _directory(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, tag: str | None
) -> list[tuple[str, str]]:
    url = stack.http("campaign") + "/v1/directory/groups"
    params = {"tag": tag} if tag else {}
    found = (await http.get(url, params=params, headers=tenant.headers())).json()["groups"]
    return sorted((g["group_id"], g["status"]) for g in found)


async def _counts(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, broadcast: str) -> Any:
    url = stack.http("campaign") + f"/v1/broadcasts/{broadcast}"
    return (await http.get(url, headers=tenant.headers())).json()["counts"]


async def test_a_broadcast_to_a_tag_counts_its_deliveries_and_a_retry_sends_nothing_twice(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    tag = f"vip-{uuid.uuid4().hex[:6]}"
    a, b, gone = (f"g-{uuid.uuid4().hex[:6]}" for _ in range(3))
    dismissed = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_dismissed", "group_id": gone}
    await post_events(http, stack, tenant, [
        _created(a, name="一群", tags=[tag]), _created(b, name="二群", tags=[tag]),
        _created(gone, name="三群", tags=[tag]), dismissed,
    ])  # fmt: skip
    body = {"client_id": f"c-{uuid.uuid4().hex[:6]}", "text": "今晚 8 点直播", "tag": tag}

    await eventually(  # campaign's directory has the groups and the dismissal
        lambda: _directory(http, stack, tenant, tag),
        lambda found: found == sorted([(a, "active"), (b, "active"), (gone, "dismissed")]),
    )
    first = await _send(http, stack, tenant, body)
    assert first.status_code == 202, first.text
    broadcast = first.json()["broadcast_id"]
    again = await _send(http, stack, tenant, body)
    assert again.json() == first.json() == {"broadcast_id": broadcast, "skipped": []}

    done = await eventually(
        lambda: _counts(http, stack, tenant, broadcast), lambda c: c["delivered"] == 2
    )
    assert done == {"pending": 0, "delivered": 2, "failed": 0, "unsupported": 0,
                    "awaiting_confirmation": 0}  # fmt: skip

    async def sent_to(group: str) -> int:
        actions = await actions_in(http, stack, tenant, group, source="campaign")
        return sum(1 for x in actions if x["text"] == body["text"])

    await stays(lambda: sent_to(a), 1, for_seconds=2)  # one message, retried or not
    assert await sent_to(gone) == 0


async def test_the_limit_and_unknown_groups(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    many = await _send(http, stack, tenant, {"text": "x", "groups": [f"g-{i}" for i in range(201)]})
    assert many.status_code == 422 and many.json() == {
        "error": "groups: at most 200 groups, got 201", "field": "groups",
    }  # fmt: skip
    both = await _send(http, stack, tenant, {"text": "x", "groups": ["g-1"], "tag": "t"})
    assert both.status_code == 422
    unknown = await _send(http, stack, tenant, {"text": "x", "groups": ["g-never"]})
    assert unknown.json()["skipped"] == [
        {"group_id": "g-never", "reason": "no event of this group has been seen"}
    ]


async def test_a_wecom_group_gets_its_quota_of_group_messages_a_day(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient, wecom: FakeWecom
) -> None:
    chat = f"wr{uuid.uuid4().hex}"
    wecom.groups[chat] = {"name": "福利群", "owner": "zhangsan"}
    await post_events(http, stack, tenant, [_created(chat, name="福利群", platform="wecom")])
    morning = {"client_id": f"c-{uuid.uuid4().hex[:6]}", "text": "早安", "groups": [chat]}

    await eventually(
        lambda: _directory(http, stack, tenant, None), lambda found: (chat, "active") in found
    )
    broadcast = (await _send(http, stack, tenant, morning)).json()["broadcast_id"]
    counted = await eventually(
        lambda: _counts(http, stack, tenant, broadcast), lambda c: c["pending"] == 0
    )
    assert counted["awaiting_confirmation"] == 1, counted
    evening = await _send(http, stack, tenant, {"text": "晚安", "groups": [chat]})
    [skipped] = evening.json()["skipped"]
    assert skipped["group_id"] == chat and "1 group message(s) a day" in skipped["reason"]
    assert len(wecom.calls_to("add_msg_template")) == 1
