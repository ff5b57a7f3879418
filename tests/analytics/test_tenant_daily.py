"""The tenant's day as WeCom counts it (`GET /v1/stats/daily`), through the real pipeline:
exact for a scripted three days, days in the tenant's time zone, events read again or posted
twice counted once, CSV the same rows as JSON, and one tenant's numbers never another's."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import grpc
import httpx
from google.protobuf import json_format

from services.gen.shequn.v1 import analytics_pb2, analytics_pb2_grpc
from tests.clients import joined, message, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.kafka import produce, read_topic
from tests.waiting import eventually, stays


def _at(when: str, event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "occurred_at": when}


def _group(kind: str, group: str, when: str) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": f"ev-{uuid.uuid4().hex}", "type": kind, "group_id": group}
    if kind == "group_created":
        event["group"] = {"name": group}
    return _at(when, event)


def _week(g0: str, g1: str, g2: str) -> list[dict[str, Any]]:
    """Three days in Shanghai: 11-29 one group and one join; 11-30 two groups, four joins, three
    messages of one member (the last at 23:59:30); 12-01 a group dismissed, a member gone, and
    one message at 00:00:30."""
    d29, d30 = "2026-11-29T10:00:00+08:00", "2026-11-30T09:00:00+08:00"
    d01 = "2026-12-01T12:00:00+08:00"
    return [
        _group("group_created", g0, d29), _at(d29, joined(g0, "u-0")),
        _group("group_created", g1, d30), _group("group_created", g2, d30),
        *(_at(d30, joined(g1, u)) for u in ("u-1", "u-2", "u-3")), _at(d30, joined(g2, "u-1")),
        _at(d30, message(g1, "u-1")), _at(d30, message(g1, "u-1")),
        _at("2026-11-30T15:59:30Z", message(g2, "u-1")),  # 23:59:30 in Shanghai
        _group("group_dismissed", g2, d01),
        _at(d01, {**joined(g1, "u-3"), "type": "member_left", "reason": "quit"}),
        _at("2026-11-30T16:00:30Z", message(g1, "u-2")),  # 00:00:30 on 12-01 in Shanghai
    ]  # fmt: skip


EXPECTED = [
    {"date": "2026-11-30", "groups_total": 3, "groups_new": 2, "groups_with_messages": 2,
     "members_total": 5, "members_new": 4, "members_posted": 1, "messages_total": 3},
    {"date": "2026-12-01", "groups_total": 2, "groups_new": 0, "groups_with_messages": 1,
     "members_total": 4, "members_new": 0, "members_posted": 1, "messages_total": 1},
]  # fmt: skip
RANGE = "?from=2026-11-30&to=2026-12-01"


async def _daily(
    http: httpx.AsyncClient, stack: Stack, tenant: Tenant, query: str = RANGE
) -> httpx.Response:
    url = stack.http("analytics") + "/v1/stats/daily" + query
    return await http.get(url, headers=tenant.headers("viewer"))


async def _days(http: httpx.AsyncClient, stack: Stack, tenant: Tenant) -> list[dict[str, Any]]:
    response = await _daily(http, stack, tenant)
    assert response.status_code == 200, response.text
    days: list[dict[str, Any]] = response.json()["days"]
    return days


async def test_a_scripted_tenant_counted_exactly_once_in_its_days(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    groups = [f"g-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    events = _week(*groups)
    response = await post_events(http, stack, tenant, events)
    assert [r["status"] for r in response.json()["results"]] == ["accepted"] * len(events)
    await eventually(lambda: _days(http, stack, tenant), lambda days: days == EXPECTED)

    # The same events posted again (duplicates) and read again off the topic, byte for byte.
    again = await post_events(http, stack, tenant, events[:4])
    assert {r["status"] for r in again.json()["results"]} == {"duplicate"}
    prefix = f"{tenant.id}:".encode()
    copies = await read_topic(
        stack.kafka, "shequn.events.v1", len(events), lambda m: (m.key or b"").startswith(prefix)
    )
    await produce(stack.kafka, [(m.topic, m.key, m.value) for m in copies])
    marker = _at("2026-12-01T20:00:00+08:00", message(groups[0], "u-0"))
    await post_events(http, stack, tenant, marker)
    counted = [EXPECTED[0], {**EXPECTED[1], "groups_with_messages": 2, "members_posted": 2,
                             "messages_total": 2}]  # fmt: skip
    await eventually(lambda: _days(http, stack, tenant), lambda days: days == counted)
    await stays(lambda: _days(http, stack, tenant), counted)

    as_csv = await _daily(http, stack, tenant, RANGE + "&format=csv")
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [{k: v if k == "date" else int(v) for k, v in r.items()} for r in rows] == counted

    # gRPC answers the same rows, a group's days too.
    async with grpc.aio.insecure_channel(stack.grpc("analytics")) as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        viewer = (("authorization", f"Bearer {tenant.viewer}"),)
        request = analytics_pb2.TenantDailyRequest(from_day="2026-11-30", to_day="2026-12-01")
        reply = await stub.GetTenantDaily(request, metadata=viewer)
        asked = analytics_pb2.GroupDailyRequest(
            group_id=groups[1], from_day="2026-11-30", to_day="2026-12-01"
        )
        group = await stub.GetGroupDaily(asked, metadata=viewer)
        try:
            await stub.GetTenantDaily(
                analytics_pb2.TenantDailyRequest(from_day="2026-12-31", to_day="2026-12-01"),
                metadata=viewer,
            )
            raise AssertionError("a range that ends before it begins was answered")
        except grpc.aio.AioRpcError as refused:
            assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "from" in (refused.details() or "")
    as_dicts = [
        json_format.MessageToDict(
            d, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
        )
        for d in reply.days
    ]
    assert [{k: v if k == "date" else int(v) for k, v in d.items()} for d in as_dicts] == counted
    assert [(d.date, d.messages, d.joins, d.leaves) for d in group.days] == [
        ("2026-11-30", 2, 3, 0),
        ("2026-12-01", 1, 0, 1),
    ]

    other = await create_tenant(stack)
    theirs = await http.get(
        stack.http("analytics") + f"/v1/stats/groups/{groups[1]}/daily" + RANGE,
        headers=other.headers("viewer"),
    )
    for day in [*await _days(http, stack, other), *theirs.json()["days"]]:
        assert all(v == 0 for k, v in day.items() if k != "date"), day


async def test_a_day_range_is_checked(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    checked = [
        ("?from=2026-12-02&to=2026-12-01", "from"),
        ("?from=2026-13-01", "from"),
        ("?from=2020-01-01&to=2026-01-01", "to"),
    ]
    for query, field in checked:
        response = await _daily(http, stack, tenant, query)
        assert response.status_code in (400, 422), response.text
        assert field in response.text
    unauthenticated = await http.get(stack.http("analytics") + "/v1/stats/daily")
    assert unauthenticated.status_code == 401
