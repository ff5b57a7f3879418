"""Every campaign route keeps to the caller's tenant: with another tenant's key, what the first
tenant made is not found. The list is checked against campaign's OpenAPI document, so a new
route must join it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import Stack, Tenant, create_tenant


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
    ids = {"coupon_id": made.json()["coupon_id"], "code": code,
           "broadcast_id": sent.json()["broadcast_id"],
           "schedule_id": planned.json()["schedule_id"]}  # fmt: skip

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

    spec = (await http.get(f"{url}/openapi.json")).json()
    routes = {
        (m.upper(), p) for p, ops in spec["paths"].items() for m in ops if p.startswith("/v1/")
    }
    assert routes == {(m, p) for m, p, _, _ in expected}
