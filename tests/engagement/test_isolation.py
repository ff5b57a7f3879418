"""Every engagement route keeps to the caller's tenant: with another tenant's key, what the
first tenant made is not found, and what is read is the caller's own (empty, the defaults).
The list is checked against engagement's OpenAPI document, so a new route must join it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.clients import message, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.waiting import eventually


async def test_no_route_reaches_another_tenants_engagement(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    url, admin = stack.http("engagement"), tenant.headers("admin")
    group, member = f"g-{uuid.uuid4().hex[:6]}", f"u-{uuid.uuid4().hex[:6]}"
    created = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": group}
    picture = message(group, member, "晒单")
    picture["message"] |= {"kind": "image", "media_url": "https://img.example.com/a.jpg"}
    await post_events(http, stack, tenant, [created, message(group, member, "你好"), picture])
    await http.put(f"{url}/v1/engagement/settings", json={"timezone": "UTC"}, headers=admin)
    await http.put(f"{url}/v1/engagement/settings/groups/{group}", json={}, headers=admin)
    reply = {"keywords": ["z"], "reply": {"text": "y"}}
    made = await http.post(f"{url}/v1/autoreplies", json=reply, headers=admin)
    rule = made.json()["rule_id"]
    pool = {"name": "l", "prizes": [{"name": "p", "weight": 1, "stock": 1}]}
    lottery = (await http.post(f"{url}/v1/lotteries", json=pool, headers=admin)).json()[
        "lottery_id"
    ]
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    quiz_body = {
        "group_id": group,
        "question": "q",
        "answers": ["a"],
        "points": 1,
        "closes_at": soon,
    }
    poll_body = {"group_id": group, "question": "q", "options": ["a", "b"], "closes_at": soon}
    quiz = await eventually(
        lambda: http.post(f"{url}/v1/quizzes", json=quiz_body, headers=admin),
        lambda r: r.status_code == 201,
    )
    poll = await http.post(f"{url}/v1/polls", json=poll_body, headers=admin)
    awaiting = await eventually(
        lambda: http.get(f"{url}/v1/red-packets/awaiting", headers=admin),
        lambda r: len(r.json()["red_packets"]) == 1,
    )
    payout = awaiting.json()["red_packets"][0]["payout_id"]
    await eventually(
        lambda: http.get(f"{url}/v1/members/{member}/profile", headers=admin),
        lambda r: r.status_code == 200,
    )
    ids = {
        "group_id": group, "member_id": member, "rule_id": rule, "lottery_id": lottery,
        "quiz_id": quiz.json()["quiz_id"], "poll_id": poll.json()["poll_id"], "payout_id": payout,
    }  # fmt: skip

    red_packet = {"payout_id": "p", "kind": "birthday", "member_id": member, "group_id": group}
    other = await create_tenant(stack)
    theirs = other.headers("admin")
    not_found = 404
    expected: list[tuple[str, str, Any, Any]] = [
        ("GET", "/v1/engagement/settings", None, lambda b: b["timezone"] is None),
        ("PUT", "/v1/engagement/settings", {}, lambda b: b["timezone"] is None),
        ("GET", "/v1/engagement/settings/groups/{group_id}", None, lambda b: b["override"] == {}),
        ("DELETE", "/v1/engagement/settings/groups/{group_id}", None, not_found),
        ("PUT", "/v1/engagement/settings/groups/{group_id}", {}, lambda b: not b["override"]),
        ("GET", "/v1/engagement/welcome-templates", None, lambda b: b["templates"] == []),
        ("GET", "/v1/members/{member_id}/profile", None, not_found),
        ("GET", "/v1/members/{member_id}/points", None, lambda b: not b["entries"]),
        ("POST", "/v1/points/grants", {"grant_id": "x", "member_id": member, "points": -1}, 409),
        ("GET", "/v1/groups/{group_id}/segments", None, lambda b: b["koc"] == b["silent"] == 0),
        ("GET", "/v1/autoreplies", None, lambda b: b["rules"] == []),
        ("POST", "/v1/autoreplies", reply, lambda b: b["overlaps"] == []),
        ("GET", "/v1/autoreplies/{rule_id}", None, not_found),
        ("PUT", "/v1/autoreplies/{rule_id}", reply, not_found),
        ("DELETE", "/v1/autoreplies/{rule_id}", None, not_found),
        ("POST", "/v1/lotteries", pool, lambda b: b["lottery_id"] != lottery),
        ("GET", "/v1/lotteries/{lottery_id}", None, not_found),
        ("POST", "/v1/lotteries/{lottery_id}/draws", {"member_id": member}, not_found),
        ("GET", "/v1/lotteries/{lottery_id}/draws?member_id=" + member, None, not_found),
        ("POST", "/v1/quizzes", quiz_body, not_found),  # the group is not one of theirs
        ("GET", "/v1/quizzes/{quiz_id}", None, not_found),
        ("POST", "/v1/polls", poll_body, not_found),
        ("GET", "/v1/polls/{poll_id}", None, not_found),
        ("POST", "/v1/red-packets", red_packet, not_found),
        ("GET", "/v1/red-packets/awaiting", None, lambda b: b["red_packets"] == []),
        ("POST", "/v1/red-packets/{payout_id}/approve", None, not_found),
        ("POST", "/v1/red-packets/{payout_id}/reject", None, not_found),
    ]  # fmt: skip
    for method, path, body, wanted in expected:
        answer = await http.request(method, url + path.format(**ids), json=body, headers=theirs)
        if isinstance(wanted, int):
            assert answer.status_code == wanted, (method, path, answer.text)
        else:
            assert answer.status_code in (200, 201), (method, path, answer.text)
            assert wanted(answer.json()), (method, path, answer.text)
    # Nothing of the first tenant's changed.
    assert (await http.get(f"{url}/v1/autoreplies/{rule}", headers=admin)).status_code == 200
    assert (await http.get(f"{url}/v1/engagement/settings", headers=admin)).json()[
        "timezone"
    ] == "UTC"

    spec = (await http.get(f"{url}/openapi.json")).json()
    routes = {
        (m.upper(), p) for p, ops in spec["paths"].items() for m in ops if p.startswith("/v1/")
    }
    tested = {(m, p.split("?")[0]) for m, p, _, _ in expected}
    assert routes == tested, routes ^ tested
