"""Campaign's fan-outs: an SOP slot for 1,000 groups (from the slot's instant until every
group's message is produced, then until every one is delivered), and a broadcast to 200 groups
(the request's answer, then until the live counts have no message pending). The groups are on
the sim platform, whose delivery is the stack's own."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import Stack, create_tenant
from tests.waiting import eventually

SOP_GROUPS, BROADCAST_GROUPS = 1000, 200


async def _groups(http: httpx.AsyncClient, stack: Stack, tag: str, count: int) -> None:
    created = [
        {"event_id": f"ev-{uuid.uuid4().hex}", "type": "group_created", "group_id": f"{tag}-{i}",
         "group": {"name": f"群{i}", "tags": [tag]}}
        for i in range(count)
    ]  # fmt: skip
    for start in range(0, count, 500):
        sent = await http.post(stack.http("ingestion") + "/v1/events",
                               json={"events": created[start : start + 500]})  # fmt: skip
        assert sent.status_code == 202, sent.text

    async def known() -> int:
        seen, after = 0, None
        while True:
            params: dict[str, str | int] = {"tag": tag, "limit": 500}
            if after:
                params["after"] = after
            page = (await http.get(stack.http("campaign") + "/v1/directory/groups",
                                   params=params)).json()  # fmt: skip
            seen += len(page["groups"])
            if not (after := page["next"]):
                return seen

    await eventually(known, lambda n: n >= count, 300, 1.0)


async def bench_sop(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    tag = f"sop{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(timeout=60, headers=tenant.headers("operator")) as http:
        await _groups(http, stack, tag, SOP_GROUPS)
        slot = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)
        cron = f"{slot.minute} {slot.hour} * * * {slot.second}"
        body = {"name": "bench", "cron": cron, "timezone": "UTC", "tag": tag, "text": "早安"}
        made = await http.post(stack.http("campaign") + "/v1/sop/schedules", json=body)
        assert made.status_code == 201, made.text
        runs = stack.http("campaign") + f"/v1/sop/schedules/{made.json()['schedule_id']}/runs"

        async def run() -> Any:
            found = (await http.get(runs)).json()["runs"]
            return found[0] if found else None

        fired = await eventually(run, lambda r: r and r["state"] == "fired", 120, 0.1)
        fired_at = time.time()
        done = await eventually(run, lambda r: r["counts"]["pending"] == 0, 600, 0.5)
        delivered_at = time.time()
    start = slot.timestamp()
    print(
        f"\nSOP: one slot for {len(fired['groups']):,} groups: fired {fired_at - start:.1f} s after"
        f" its instant ({len(fired['groups']) / max(fired_at - start, 1e-3):,.0f} groups/s),"
        f" every message delivered {delivered_at - start:.1f} s after it"
        f" ({done['counts']['delivered']:,} delivered)"
    )


async def bench_broadcast(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    tag = f"bc{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(timeout=60, headers=tenant.headers("operator")) as http:
        await _groups(http, stack, tag, BROADCAST_GROUPS)
        started = time.monotonic()
        sent = await http.post(
            stack.http("campaign") + "/v1/broadcasts", json={"tag": tag, "text": "双十二预告"}
        )
        answered = time.monotonic() - started
        assert sent.status_code == 202, sent.text
        url = stack.http("campaign") + f"/v1/broadcasts/{sent.json()['broadcast_id']}"

        async def counts() -> Any:
            return (await http.get(url)).json()["counts"]

        done = await eventually(counts, lambda c: c["pending"] == 0, 300, 0.2)
        took = time.monotonic() - started
    print(
        f"broadcast: {BROADCAST_GROUPS} groups answered in {answered * 1000:.0f} ms, every"
        f" message's outcome in {took:.1f} s ({done['delivered']} delivered)"
    )
