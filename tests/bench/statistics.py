"""Analytics' queries at scale: a tenant with 1,000 groups in 10 series and 90 days of events (a
message, or a join through one of 20 live codes by an invitation, in every group every day,
sent through the pipeline, so the counter documents are the ones the consumers write), then
the tenant's 90 days, a group's, and every report over them (retention, AARRR, live codes,
leaderboards, ROI, dead groups; the whole tenant, one group, one series), timed over HTTP
against the target of 300 ms."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.bench.figures import percentile
from tests.conftest import Stack, create_tenant
from tests.waiting import eventually

GROUPS, DAYS, ASKED = 1000, 90, 20
TARGET_MS = 300.0


def _events(day: datetime, offset: int) -> list[dict[str, object]]:
    at = day.isoformat()
    events: list[dict[str, object]] = []
    for g in range(GROUPS):
        member = {"id": f"u{(g * 7 + offset) % 5000}"}
        event: dict[str, object] = {
            "event_id": f"ev-{uuid.uuid4().hex}", "group_id": f"g{g:04d}", "occurred_at": at,
            "member": member,
        }  # fmt: skip
        if (g + offset) % 2:
            event |= {"type": "message_posted", "message": {"kind": "text", "text": "早"}}
        else:
            event |= {"type": "member_joined", "scene": "livecode", "livecode": f"lc{g % 20}",
                      "inviter": {"id": f"u{(g * 3 + offset) % 5000}"}}  # fmt: skip
        events.append(event)
    return events


def _groups(day: datetime) -> list[dict[str, object]]:
    return [
        {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": f"g{g:04d}",
         "occurred_at": day.isoformat(), "group": {"name": f"群{g}", "tags": [f"s{g % 10}"]}}
        for g in range(GROUPS)
    ]  # fmt: skip


async def bench_statistics(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    last = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0) - timedelta(days=1)
    first = last - timedelta(days=DAYS - 1)
    async with httpx.AsyncClient(timeout=120, headers=tenant.headers("operator")) as http:
        started = time.perf_counter()
        sending = asyncio.Semaphore(4)

        async def send(day: int) -> None:
            events = _events(first + timedelta(days=day), day)
            if day == 0:
                events = _groups(first - timedelta(hours=1)) + events
            async with sending:
                for start in range(0, len(events), 500):
                    body = {"events": events[start : start + 500]}
                    sent = await http.post(stack.http("ingestion") + "/v1/events", json=body)
                    assert sent.status_code == 202, sent.text

        await asyncio.gather(*(send(day) for day in range(DAYS)))
        window = {"from": first.date().isoformat(), "to": last.date().isoformat()}
        daily = stack.http("analytics") + "/v1/stats/daily"

        async def counted() -> int:
            days = (await http.get(daily, params=window)).json()["days"]
            return sum(d["messages_total"] + d["members_new"] for d in days)

        await eventually(counted, lambda n: n >= GROUPS * DAYS, 900, 2.0)
        took = time.perf_counter() - started
        print(f"statistics: {GROUPS:,} groups × {DAYS} days = {GROUPS * DAYS:,} events "
              f"sent and counted in {took:.0f} s")  # fmt: skip
        group = stack.http("analytics") + "/v1/stats/groups/g0007/daily"
        stats = stack.http("analytics") + "/v1/stats"
        one, series = window | {"group_id": "g0007"}, window | {"tag": "s3"}
        for name, url, params in (
            ("tenant, 90 days, JSON", daily, window),
            ("tenant, 90 days, CSV", daily, window | {"format": "csv"}),
            ("a group, 90 days, JSON", group, window),
            ("a group, 90 days, CSV", group, window | {"format": "csv"}),
            ("retention, tenant", f"{stats}/retention", window),
            ("retention, a group", f"{stats}/retention", one),
            ("retention, a series", f"{stats}/retention", series),
            ("retention, CSV", f"{stats}/retention", window | {"format": "csv"}),
            ("AARRR, tenant", f"{stats}/funnel", window),
            ("AARRR, a group", f"{stats}/funnel", one),
            ("AARRR, a series", f"{stats}/funnel", series),
            (
                "AARRR, 100 groups by id",
                f"{stats}/funnel",
                window | {"group_id": [f"g{g:04d}" for g in range(100)]},
            ),
            ("live codes, tenant", f"{stats}/livecodes", window),
            ("talkers, tenant", f"{stats}/leaderboards/talkers", window),
            ("inviters, tenant", f"{stats}/leaderboards/inviters", window),
            ("talkers, a group", f"{stats}/leaderboards/talkers", one),
            ("talkers, a series", f"{stats}/leaderboards/talkers", series),
            ("ROI, tenant", f"{stats}/roi", window),
            ("ROI, a series", f"{stats}/roi", series),
            ("dead groups, tenant", f"{stats}/dead-groups", {}),
            ("dead groups, a series", f"{stats}/dead-groups", {"tag": "s3"}),
        ):
            times = []
            for _ in range(ASKED):
                asked = time.perf_counter()
                answer = await http.get(url, params=params)
                times.append((time.perf_counter() - asked) * 1000)
                assert answer.status_code == 200, answer.text
            p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
            verdict = "✓" if p95 < TARGET_MS else "✗"
            print(f"  {name:<24} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   "
                  f"(target {TARGET_MS:.0f}) {verdict}")  # fmt: skip
