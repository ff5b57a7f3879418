"""The reports through the real pipeline, on a scripted October checked by hand: retention
cohorts, the AARRR funnel, a live code's funnel, leaderboards, campaign ROI and dead groups; by
group and by tag, a page at a time, CSV the same rows as JSON, gRPC the same, events read again
counted once, and another tenant seeing none of it.

Groups: A (tag vip) and B (tag std) get five members on 10-01; C (std) 25 on 10-20.
  A: u-1 and u-2 invited by i-1, u-3 through live code lc-1 (its join names only the scan's
     token), u-4 through a fission invite into
     lc-1. u-1 posts on 10-01, 10-02 (D1), 10-08 (D7), 10-31 (D30); u-2 on 10-02 and leaves on
     10-09 (after D7); u-3 leaves on 10-02; u-4 posts on 10-08 (D7). u-1 orders 100.00 credited
     to lc-1 on 10-03, redeems a 10.00 coupon and is paid a 5.00 red packet.
  B: u-5 posts on 10-05 and orders 50.00 (not credited) on 10-04; nothing after.
  C: w-00..w-24 join on 10-20, w-00 posts on 10-30: 1 of 25 active."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest

from services.gen.shequn.v1 import analytics_pb2, analytics_pb2_grpc, common_pb2, events_pb2
from services.runtime.envelope import new_event
from tests.clients import joined, message, post_events
from tests.conftest import Stack, Tenant, create_tenant
from tests.kafka import produce, read_topic
from tests.waiting import eventually, stays

SIM = common_pb2.PLATFORM_SIM
OCT = "2026-10-{:02d}T{}:00:00+08:00"


def _on(day: int, event: dict[str, Any], hour: str = "10") -> dict[str, Any]:
    return {**event, "occurred_at": OCT.format(day, hour)}


def _left(group: str, member: str) -> dict[str, Any]:
    return {**joined(group, member), "type": "member_left", "reason": "quit"}


def _script(a: str, b: str, c: str) -> list[dict[str, Any]]:
    def created(g: str, tag: str) -> dict[str, Any]:
        event = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": g,
                 "group": {"name": f"群{g[-3:]}", "tags": [tag]}}  # fmt: skip
        return _on(1, event, "08")

    inviter = {"inviter": {"id": "i-1"}}
    credited = {"id": "o-1", "amount": 100, "attribution": "lc-1"}
    order = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "order_placed", "group_id": a,
             "member": {"id": "u-1"}, "order": credited}  # fmt: skip
    coupon = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "coupon_redeemed", "group_id": a,
              "member": {"id": "u-1"}, "coupon": {"id": "c-1", "value": 10}}  # fmt: skip
    plain = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "order_placed", "group_id": b,
             "member": {"id": "u-5"}, "order": {"id": "o-2", "amount": 50}}  # fmt: skip
    scan = {"event_id": f"ev-{uuid.uuid4().hex}", "type": "livecode_scanned", "group_id": a,
            "livecode": "lc-1", "scanner_id": "u-3"}  # fmt: skip
    return [
        created(a, "vip"), created(b, "std"), created(c, "std"),
        _on(1, scan, "09"),
        _on(1, {**scan, "event_id": f"ev-{uuid.uuid4().hex}", "join_token": "tok-3"}, "09"),
        _on(1, joined(a, "u-1", **inviter)), _on(1, joined(a, "u-2", **inviter)),
        _on(1, joined(a, "u-3", scene="livecode", join_token="tok-3")),  # lc-1's, by its scan
        _on(1, joined(a, "u-4", scene="livecode", livecode="lc-1", invite_code="fx-abc")),
        _on(1, joined(b, "u-5")),
        _on(1, message(a, "u-1"), "11"), _on(2, message(a, "u-1")), _on(2, message(a, "u-2")),
        _on(2, _left(a, "u-3"), "12"), _on(3, order), _on(3, coupon), _on(4, plain),
        _on(5, message(b, "u-5")), _on(8, message(a, "u-1")), _on(8, message(a, "u-4")),
        _on(9, _left(a, "u-2")), _on(31, message(a, "u-1")),
        *(_on(20, joined(c, f"w-{i:02d}")) for i in range(25)), _on(30, message(c, "w-00")),
    ]  # fmt: skip


def _published(tenant: str, a: str) -> list[events_pb2.Event]:
    """What engagement and campaign publish: check-ins, a red packet paid, a fission task
    completed into lc-1, a scan of a fission invite code."""

    def made(event_id: str, day: int) -> events_pb2.Event:
        at = datetime.fromisoformat(OCT.format(day, "10")).astimezone(UTC)
        return new_event(f"{event_id}-{uuid.uuid4().hex[:6]}", tenant, a, SIM, at, at)

    found = []
    for day, member, streak in ((1, "u-1", 1), (2, "u-1", 2), (2, "u-2", 1)):
        e = made("checkin", day)
        e.member_checked_in.member.id, e.member_checked_in.streak = member, streak
        found.append(e)
    paid = made("red-packet", 3)
    paid.red_packet_paid.member.id, paid.red_packet_paid.amount.minor = "u-1", 500
    reward = made("reward", 9)
    reward.reward_earned.member.id, reward.reward_earned.livecode = "u-9", "lc-1"
    scan = made("scan", 1)
    scan.livecode_scanned.livecode, scan.livecode_scanned.invite_code = "lc-1", "fx-abc"
    return [*found, paid, reward, scan]


COHORT_1001 = {"date": "2026-10-01", "joined": 5, "d1_members": 4, "d1_active": 2,
               "d7_members": 4, "d7_active": 2, "d30_members": 3, "d30_active": 1}  # fmt: skip
FUNNEL = {"group_id": "", "acquired": 5, "activated": 4, "retained_d7": 2, "retained_d30": 1,
          "revenue_orders": 2, "revenue_amount": 15000, "referrers": 1,
          "referred": 2}  # fmt: skip
LIVECODE = {"livecode": "lc-1", "scans": 2, "joins": 1, "stayed": 0, "activated": 0,
            "invited_scans": 1, "invited_joins": 1, "invited_stayed": 1,
            "completed": 1}  # fmt: skip
ROI_1003 = {"date": "2026-10-03", "coupon_spend": 1000, "red_packet_spend": 500, "spend": 1500,
            "attributed_orders": 1, "attributed_amount": 10000, "roi": 6.67}  # fmt: skip
EARLY = "from=2026-10-01&to=2026-10-10"


class Reports:
    def __init__(self, http: httpx.AsyncClient, stack: Stack, tenant: Tenant) -> None:
        self.http, self.base, self.tenant = http, stack.http("analytics") + "/v1/stats", tenant

    async def get(self, path: str, query: str = "") -> httpx.Response:
        return await self.http.get(
            f"{self.base}/{path}?{query}", headers=self.tenant.headers("viewer")
        )

    async def json(self, path: str, query: str = "") -> dict[str, Any]:
        response = await self.get(path, query)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def rows(self, path: str, query: str = "") -> list[dict[str, Any]]:
        return list((await self.json(path, query))["rows"])


@pytest.fixture(scope="module")
async def october(stack: Stack) -> tuple[Tenant, list[str]]:
    tenant = await create_tenant(stack)
    groups = [f"g-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    async with httpx.AsyncClient(timeout=30) as http:
        events = _script(*groups)
        response = await post_events(http, stack, tenant, events)
        assert [r["status"] for r in response.json()["results"]] == ["accepted"] * len(events)
    key = f"{tenant.id}:{groups[0]}".encode()
    await produce(stack.kafka, [("shequn.events.v1", key, e.SerializeToString())
                                for e in _published(tenant.id, groups[0])])  # fmt: skip
    return tenant, groups


async def _settled(reports: Reports) -> None:
    await eventually(
        lambda: reports.rows("retention", "from=2026-10-01&to=2026-10-01"),
        lambda rows: rows == [COHORT_1001],
    )
    await eventually(lambda: reports.rows("dead-groups", "on=2026-10-31"), lambda r: len(r) == 2)


async def test_cohorts_funnels_boards_roi_and_dead_groups_add_up(
    stack: Stack, http: httpx.AsyncClient, october: tuple[Tenant, list[str]]
) -> None:
    tenant, (a, b, c) = october
    reports = Reports(http, stack, tenant)
    await _settled(reports)
    # A batch's rollups are written one family after another: the series' may come a moment later.
    vip = await eventually(
        lambda: reports.rows("retention", "from=2026-10-01&to=2026-10-01&tag=vip"),
        lambda rows: rows[0]["joined"] == 4,
    )
    expected = {"date": "2026-10-01", "joined": 4, "d1_members": 3, "d1_active": 2,
                "d7_members": 3, "d7_active": 2, "d30_members": 2, "d30_active": 1}  # fmt: skip
    assert vip == [expected]
    series = await reports.rows("funnel", f"{EARLY}&tag=vip")
    assert series == [{**FUNNEL, "acquired": 4, "activated": 3, "revenue_orders": 1,
                       "revenue_amount": 10000}]  # fmt: skip
    assert (await reports.json("roi", f"{EARLY}&tag=vip"))["total"]["spend"] == 1500
    assert (await reports.json("roi", f"{EARLY}&tag=std"))["total"]["spend"] == 0
    assert await reports.rows("funnel", EARLY) == [FUNNEL]
    both = f"{EARLY}&group_id={a}&group_id={b}"
    by_group = await reports.rows("funnel", both)
    assert [(r["group_id"], r["acquired"], r["activated"], r["revenue_amount"], r["referred"])
            for r in by_group] == sorted([(a, 4, 3, 10000, 2), (b, 1, 1, 5000, 0)])  # fmt: skip
    first = await reports.json("funnel", both + "&limit=1")
    rest = await reports.json("funnel", both + f"&limit=1&after={first['next']}")
    assert first["rows"] + rest["rows"] == by_group and rest["next"] is None
    assert await reports.rows("livecodes", EARLY) == [LIVECODE]

    talkers = await reports.json("leaderboards/talkers", f"{EARLY}&limit=2")
    assert talkers["rows"] == [{"rank": 1, "member_id": "u-1", "value": 3},
                               {"rank": 2, "member_id": "u-2", "value": 1}]  # fmt: skip
    rest = await reports.json("leaderboards/talkers", f"{EARLY}&limit=2&after={talkers['next']}")
    assert [(r["rank"], r["member_id"]) for r in rest["rows"]] == [(3, "u-4"), (4, "u-5")]
    assert rest["next"] is None
    inviters = await reports.rows("leaderboards/inviters", EARLY)
    assert inviters == [{"rank": 1, "member_id": "i-1", "value": 2}]
    streaks = await reports.rows("leaderboards/streaks", EARLY)
    assert [(r["member_id"], r["value"]) for r in streaks] == [("u-1", 2), ("u-2", 1)]

    roi = await reports.json("roi", EARLY)
    assert roi["rows"][2] == ROI_1003 and roi["total"] == {**ROI_1003, "date": "total"}
    dead = await reports.rows("dead-groups", "on=2026-10-31")
    assert [(r["group_id"], r["reason"], r["members"], r["active_7d"]) for r in dead] == sorted(
        [(b, "silent", 1, 0), (c, "inactive", 25, 1)]
    )
    assert await reports.rows("dead-groups", "on=2026-10-31&tag=vip") == []


async def test_csv_grpc_and_redelivery_give_the_same_rows(
    stack: Stack, http: httpx.AsyncClient, october: tuple[Tenant, list[str]]
) -> None:
    tenant, (a, _, _) = october
    reports = Reports(http, stack, tenant)
    await _settled(reports)
    for path, query in (("retention", EARLY), ("funnel", EARLY), ("livecodes", EARLY),
                        ("leaderboards/talkers", EARLY), ("roi", EARLY),
                        ("dead-groups", "on=2026-10-31")):  # fmt: skip
        rows = await reports.rows(path, query)
        as_csv = await reports.get(path, query + "&format=csv")
        by_accept = await http.get(
            f"{reports.base}/{path}?{query}",
            headers={**tenant.headers("viewer"), "Accept": "text/csv"},
        )
        assert (
            as_csv.headers["content-type"].startswith("text/csv") and by_accept.text == as_csv.text
        )
        read = list(csv.DictReader(io.StringIO(as_csv.text)))
        as_text = [{k: "" if v is None else ";".join(v) if isinstance(v, list) else str(v)
                    for k, v in row.items()} for row in rows]  # fmt: skip
        assert read == as_text, path

    async with grpc.aio.insecure_channel(stack.grpc("analytics")) as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        viewer = (("authorization", f"Bearer {tenant.viewer}"),)
        scope = analytics_pb2.ReportRequest(from_day="2026-10-01", to_day="2026-10-10")
        cohorts = await stub.GetRetention(scope, metadata=viewer)
        assert cohorts.rows[0].HasField("d30_active") and cohorts.rows[0].d30_active == 1
        funnel = await stub.GetFunnel(scope, metadata=viewer)
        assert funnel.rows[0].activated == FUNNEL["activated"]
        board = analytics_pb2.LeaderboardRequest(board="talkers", scope=scope)
        assert [e.member_id for e in (await stub.GetLeaderboard(board, metadata=viewer)).rows][
            :1
        ] == ["u-1"]
        roi = await stub.GetRoi(scope, metadata=viewer)
        assert roi.total.attributed_amount == 10000 and roi.total.roi == pytest.approx(6.67)
        codes = await stub.GetLivecodeFunnels(analytics_pb2.LivecodeFunnelsRequest(
            from_day="2026-10-01", to_day="2026-10-10"), metadata=viewer)  # fmt: skip
        assert codes.rows[0].completed == 1
        dead = await stub.GetDeadGroups(analytics_pb2.DeadGroupsRequest(on="2026-10-31"),
                                        metadata=viewer)  # fmt: skip
        assert sorted(g.reason for g in dead.rows) == ["inactive", "silent"]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetLeaderboard(analytics_pb2.LeaderboardRequest(board="loudest"),
                                      metadata=viewer)  # fmt: skip
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # Every event of the tenant read again off the topic: nothing counted twice.
    prefix = f"{tenant.id}:".encode()
    copies = await read_topic(stack.kafka, "shequn.events.v1", 54,
                              lambda m: (m.key or b"").startswith(prefix))  # fmt: skip
    await produce(stack.kafka, [(m.topic, m.key, m.value) for m in copies])
    await post_events(http, stack, tenant, _on(31, message(a, "u-9"), "20"))
    await eventually(
        lambda: reports.rows("leaderboards/talkers", "from=2026-10-31&to=2026-10-31"),
        lambda rows: len(rows) == 2,
    )
    await stays(lambda: reports.rows("retention", "from=2026-10-01&to=2026-10-01"), [COHORT_1001])
    assert await reports.rows("funnel", EARLY) == [FUNNEL]
    assert await reports.rows("livecodes", EARLY) == [LIVECODE]


async def test_another_tenant_sees_none_of_it_and_bad_input_names_the_field(
    stack: Stack, http: httpx.AsyncClient, october: tuple[Tenant, list[str]]
) -> None:
    tenant, (a, _, c) = october
    await _settled(Reports(http, stack, tenant))
    other = Reports(http, stack, await create_tenant(stack))
    assert (await other.rows("retention", "from=2026-10-01&to=2026-10-01"))[0]["joined"] == 0
    assert (await other.rows("funnel", f"{EARLY}&group_id={a}"))[0]["acquired"] == 0
    assert await other.rows("livecodes", EARLY) == []
    assert await other.rows("leaderboards/talkers", EARLY) == []
    assert (await other.json("roi", EARLY))["total"]["spend"] == 0
    assert await other.rows("dead-groups", f"on=2026-10-31&group_id={c}") == []
    for path, query, field in (
        ("retention", "from=2026-10-05&to=2026-10-01", "from"),
        ("leaderboards/talkers", "after=first", "after"),
        ("roi", "limit=0", "limit"),
        ("dead-groups", "on=2026-02-30", "on"),
        ("funnel", "group_id=a%20b", "group_id"),
    ):
        refused = await other.get(path, query)
        assert refused.status_code in (400, 422) and field in refused.text, (path, refused.text)
    assert (await http.get(other.base + "/retention")).status_code == 401


async def test_days_are_counted_in_the_tenants_own_time_zone(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    tenant = await create_tenant(stack)
    url = stack.http("analytics") + "/v1/stats/settings"
    refused = await http.put(
        url, json={"timezone": "Mars/Olympus"}, headers=tenant.headers("admin")
    )
    assert refused.status_code == 422 and "timezone" in refused.text
    viewer = await http.put(
        url, json={"timezone": "America/New_York"}, headers=tenant.headers("viewer")
    )
    assert viewer.status_code == 403
    set_ = await http.put(
        url, json={"timezone": "America/New_York"}, headers=tenant.headers("admin")
    )
    assert set_.json() == {"timezone": "America/New_York"}
    group = f"g-{uuid.uuid4().hex[:8]}"
    # 03:00 UTC on 11-02 is 22:00 on 11-01 in New York (and 11:00 on 11-02 in Shanghai).
    await post_events(http, stack, tenant, {**message(group, "u-1"),
                                             "occurred_at": "2026-11-02T03:00:00Z"})  # fmt: skip
    reports = Reports(http, stack, tenant)
    days = await eventually(
        lambda: reports.json("../stats/daily", "from=2026-11-01&to=2026-11-02"),
        lambda body: sum(d["messages_total"] for d in body["days"]) == 1,
    )
    assert [d["messages_total"] for d in days["days"]] == [1, 0]
