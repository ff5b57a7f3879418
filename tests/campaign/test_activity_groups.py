"""Short-term activity groups against the real stack: the wrap-up on the end day, then the
farewell and the dismissal, each once, on a sim group that the dismissal really dismisses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.clients import actions_in, post_events
from tests.conftest import Stack, Tenant
from tests.waiting import eventually, stays


async def test_the_wrap_up_then_the_farewell_and_the_dismissal(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    created = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": group,
               "group": {"name": "双十二活动群"}}  # fmt: skip
    await post_events(http, stack, tenant, created)
    url = stack.http("campaign") + f"/v1/activity-groups/{group}"
    headers = tenant.headers("operator")
    soon = datetime.now(UTC) + timedelta(seconds=3)
    body = {"ends_on": soon.date().isoformat(), "at": soon.time().isoformat(),
            "timezone": "UTC", "dismiss_after_days": 0,
            "wrap_up": "活动结束啦，谢谢大家", "farewell": "本群即将解散，再见"}  # fmt: skip

    async def put() -> httpx.Response:
        return await http.put(url, json=body, headers=headers)

    made = await eventually(put, lambda a: a.status_code == 200)  # once campaign knows the group
    assert [s["step"] for s in made.json()["steps"]] == ["wrap_up", "dismiss"]

    async def state() -> Any:
        return (await http.get(url, headers=tenant.headers())).json()

    done = await eventually(state, lambda s: s["outcomes"].get("dismiss") == "delivered", within=45)
    assert all(s["done"] for s in done["steps"])
    assert done["outcomes"] == {"wrap_up": "delivered", "farewell": "delivered",
                                "dismiss": "delivered"}  # fmt: skip
    sent = await actions_in(http, stack, tenant, group, source="campaign")
    assert [(a["type"], a["text"]) for a in sent] == [
        ("send_text", "活动结束啦，谢谢大家"),
        ("send_text", "本群即将解散，再见"),
        ("dismiss_group", "本群即将解散，再见"),
    ]
    await stays(lambda: _count(http, stack, tenant, group), 3, for_seconds=3)

    async def status() -> Any:
        found = await http.get(stack.http("campaign") + "/v1/directory/groups",
                               headers=tenant.headers())  # fmt: skip
        return {g["group_id"]: g["status"] for g in found.json()["groups"]}.get(group)

    await eventually(status, lambda s: s == "dismissed")  # the sim platform dismissed it


async def _count(http: httpx.AsyncClient, stack: Stack, tenant: Tenant, group: str) -> int:
    return len(await actions_in(http, stack, tenant, group, source="campaign"))


async def test_an_activity_group_refuses_what_cannot_be(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url = stack.http("campaign") + "/v1/activity-groups"
    headers = tenant.headers("operator")
    never = await http.put(f"{url}/g-never", json={"ends_on": "2030-01-01"}, headers=headers)
    assert (never.status_code, never.json()["field"]) == (404, "group_id")
    group = f"g-{uuid.uuid4().hex[:6]}"
    created = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": group,
               "group": {"name": "x"}}  # fmt: skip
    await post_events(http, stack, tenant, created)
    past = {"ends_on": "2020-01-01"}
    late = await eventually(
        lambda: http.put(f"{url}/{group}", json=past, headers=headers),
        lambda a: a.status_code != 404,
    )
    assert (late.status_code, late.json()["field"]) == (422, "ends_on")
    bad = await http.put(f"{url}/{group}", json={"ends_on": "soon"}, headers=headers)
    assert (bad.status_code, bad.json()["field"]) == (422, "ends_on")
    made = await http.put(f"{url}/{group}", json={"ends_on": "2030-01-01"}, headers=headers)
    assert made.status_code == 200 and made.json()["dismiss_after_days"] is None
    listed = await http.get(url, headers=tenant.headers())
    assert [g["group_id"] for g in listed.json()["groups"]] == [group]
    assert (await http.delete(f"{url}/{group}", headers=headers)).status_code == 204
    assert (await http.get(f"{url}/{group}", headers=headers)).status_code == 404
