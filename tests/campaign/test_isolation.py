"""Every campaign route keeps to the caller's tenant: with another tenant's key, what the first
tenant made is not found. The list is checked against campaign's OpenAPI document, so a new
route must join it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.clients import post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.waiting import eventually


async def test_no_route_reaches_another_tenants_campaign(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url, admin = stack.http("campaign"), tenant.headers("admin")
    coupon = {"name": "券", "value": 1, "stock": 2}
    made = await http.post(f"{url}/v1/coupons", json=coupon, headers=admin)
    code = f"lc-{uuid.uuid4().hex[:8]}"
    livecode = {"code": code, "groups": ["g-1"], "capacity": 5}
    await http.post(f"{url}/v1/livecodes", json=livecode, headers=admin)
    sent = await http.post(f"{url}/v1/broadcasts", json={"text": "x", "groups": ["g-1"]},
                           headers=admin)  # fmt: skip
    schedule = {"name": "s", "cron": "0 0 1 1 *", "groups": ["g-1"], "text": "x"}
    planned = await http.post(f"{url}/v1/sop/schedules", json=schedule, headers=admin)
    task = {"name": "t", "goal": 1, "livecode": code, "reward": {"points": 1}}
    fission = await http.post(f"{url}/v1/fission/tasks", json=task, headers=admin)
    group = f"g-{uuid.uuid4().hex[:6]}"
    created = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": group,
               "group": {"name": "x", "owner_id": "s-1", "tags": ["t"]}}  # fmt: skip
    await post_events(http, stack, tenant, created)
    activity = {"ends_on": "2030-01-01"}
    await eventually(
        lambda: http.put(f"{url}/v1/activity-groups/{group}", json=activity, headers=admin),
        lambda a: a.status_code == 200,
    )
    handover = {"from_owner": "s-1", "to_owner": "s-2", "groups": [group]}
    handed = await http.post(f"{url}/v1/handovers", json=handover, headers=admin)
    notice = {"text": "群规"}
    await http.put(f"{url}/v1/notices/t", json=notice, headers=admin)
    ladder = {"rungs": [{"tag": "t", "livecode": code}]}
    assert (await http.put(f"{url}/v1/tiers", json=ladder, headers=admin)).status_code == 200
    ids = {"coupon_id": made.json()["coupon_id"], "code": code,
           "broadcast_id": sent.json()["broadcast_id"],
           "schedule_id": planned.json()["schedule_id"], "task_id": fission.json()["task_id"],
           "group_id": group, "handover_id": handed.json()["handover_id"], "tag": "t"}  # fmt: skip

    theirs = (await create_tenant(stack)).headers("admin")
    not_found = 404
    expected: list[tuple[str, str, Any, Any]] = [
        ("POST", "/v1/coupons", coupon, lambda b: b["coupon_id"] != ids["coupon_id"]),
        ("GET", "/v1/coupons/{coupon_id}", None, not_found),
        ("POST", "/v1/coupons/{coupon_id}/issues", {"member_id": "u-1"}, not_found),
        ("GET", "/v1/directory/groups", None, lambda b: b["groups"] == []),
        ("POST", "/v1/sop/schedules", schedule, lambda b: b["schedule_id"] != ids["schedule_id"]),
        ("GET", "/v1/sop/schedules/{schedule_id}", None, not_found),
        ("PUT", "/v1/sop/schedules/{schedule_id}", schedule, not_found),
        ("DELETE", "/v1/sop/schedules/{schedule_id}", None, not_found),
        ("GET", "/v1/sop/schedules/{schedule_id}/runs", None, not_found),
        ("POST", "/v1/broadcasts", {"text": "y", "groups": ["g-1"]}, lambda b: b["skipped"]),
        ("GET", "/v1/broadcasts/{broadcast_id}", None, not_found),
        ("POST", "/v1/livecodes", livecode, 409),  # the name is taken, by whom it does not say
        ("GET", "/v1/livecodes/{code}", None, not_found),
        # Public: the group to join and a token, nothing else of the tenant's.
        ("POST", "/v1/livecodes/{code}/scan", {}, lambda b: set(b) == {"group_id", "join_token"}),
        # Lists: only what they made above, never the first tenant's.
        ("GET", "/v1/livecodes", None, lambda b: b["livecodes"] == []),
        ("GET", "/v1/coupons", None, lambda b: ids["coupon_id"] not in str(b)),
        ("GET", "/v1/sop/schedules", None, lambda b: ids["schedule_id"] not in str(b)),
        ("GET", "/v1/broadcasts", None, lambda b: ids["broadcast_id"] not in str(b)),
        ("GET", "/v1/fission/tasks", None, lambda b: b["tasks"] == []),
        ("GET", "/v1/handovers", None, lambda b: b["handovers"] == []),
        ("POST", "/v1/fission/tasks", task, not_found),  # the live code is not theirs
        ("GET", "/v1/fission/tasks/{task_id}", None, not_found),
        ("POST", "/v1/fission/tasks/{task_id}/codes", {"member_id": "u-1"}, not_found),
        ("GET", "/v1/fission/tasks/{task_id}/funnel", None, not_found),
        ("GET", "/v1/fission/tasks/{task_id}/inviters", None, not_found),
        ("PUT", "/v1/activity-groups/{group_id}", activity, not_found),  # not a group of theirs
        ("GET", "/v1/activity-groups/{group_id}", None, not_found),
        ("DELETE", "/v1/activity-groups/{group_id}", None, not_found),
        ("GET", "/v1/activity-groups", None, lambda b: b["groups"] == []),
        ("POST", "/v1/handovers", handover, 422),  # nothing of theirs is named
        ("GET", "/v1/handovers/{handover_id}", None, not_found),
        ("PUT", "/v1/notices/{tag}", {"text": "theirs"}, lambda b: b["text"] == "theirs"),
        ("GET", "/v1/notices/{tag}", None, lambda b: b["text"] == "theirs"),
        ("GET", "/v1/notice-drift", None, lambda b: b["groups"] == []),
        ("PUT", "/v1/tiers", ladder, not_found),  # the live code is not theirs
        ("GET", "/v1/tiers", None, not_found),
    ]
    for method, path, body, wanted in expected:
        answer = await http.request(method, url + path.format(**ids), json=body, headers=theirs)
        if isinstance(wanted, int):
            assert answer.status_code == wanted, (method, path, answer.text)
        else:
            assert answer.status_code in (200, 201, 202), (method, path, answer.text)
            assert wanted(answer.json()), (method, path, answer.text)
    mine = await http.get(f"{url}/v1/coupons/{ids['coupon_id']}", headers=admin)
    assert mine.json()["issued"] == 0, "nothing of the first tenant's changed"
    kept = await http.get(f"{url}/v1/notices/t", headers=admin)
    assert kept.json()["text"] == "群规"

    spec = (await http.get(f"{url}/openapi.json")).json()
    routes = {
        (m.upper(), p) for p, ops in spec["paths"].items() for m in ops if p.startswith("/v1/")
    }
    assert routes == {(m, p) for m, p, _, _ in expected}


async def test_the_tenants_lists_come_a_page_at_a_time(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url, admin = stack.http("campaign"), tenant.headers("admin")
    for n in range(3):
        made = await http.post(f"{url}/v1/coupons", json={"name": f"券{n}", "value": 1,
                               "stock": 1}, headers=admin)  # fmt: skip
        assert made.status_code == 201
        code = {"code": f"lc-{uuid.uuid4().hex[:8]}", "groups": ["g-1"]}
        assert (await http.post(f"{url}/v1/livecodes", json=code, headers=admin)).status_code == 201
    for kind, key in (("coupons", "coupon_id"), ("livecodes", "code")):
        first = (await http.get(f"{url}/v1/{kind}", params={"limit": 2}, headers=admin)).json()
        rest = (await http.get(f"{url}/v1/{kind}", params={"limit": 2, "after": first["next"]},
                               headers=admin)).json()  # fmt: skip
        seen = [i[key] for i in first[kind] + rest[kind]]
        assert (len(first[kind]), len(seen), len(set(seen)), rest["next"]) == (2, 3, 3, None)
        assert seen == sorted(seen)
    bad = await http.get(f"{url}/v1/coupons", params={"limit": 0}, headers=admin)
    assert (bad.status_code, bad.json()["field"]) == (422, "limit")
