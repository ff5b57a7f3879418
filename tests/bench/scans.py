"""Live-code scans at the public endpoint: 12,000 scans over 64 keep-alive connections of a lean
client (`load.py`; httpx measured itself, at about 100 requests/s), each scan from an address
of its own (people scan, not one machine), against a pool of 50 groups of 200 places. Prints
scans/s and the places given per group: never more than the capacity, and exactly the pool's
10,000 in all."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx

from tests.bench.load import Answer, post_many
from tests.conftest import Stack, create_tenant

GROUPS, CAPACITY, SCANS, CONNECTIONS = 50, 200, 12_000, 64


async def bench_scans(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    url, code = stack.http("campaign"), f"bench-{uuid.uuid4().hex[:8]}"
    groups = [f"g-{i}" for i in range(GROUPS)]
    async with httpx.AsyncClient(timeout=120) as http:
        made = await http.post(
            f"{url}/v1/livecodes",
            json={"code": code, "groups": groups, "capacity": CAPACITY},
            headers=tenant.headers("operator"),
        )
        assert made.status_code == 201, made.text
        given: Counter[str] = Counter()
        refused: Counter[int] = Counter()

        def answered(answer: Answer) -> None:
            if answer.status == 200:
                given[answer.body["group_id"]] += 1
            else:
                refused[answer.status] += 1

        def scans() -> Iterator[tuple[dict[str, str], Any]]:
            for i in range(SCANS):
                yield {"X-Forwarded-For": f"10.{i // 62500}.{i // 250 % 250}.{i % 250}"}, {}

        started = time.monotonic()
        await post_many(f"{url}/v1/livecodes/{code}/scan", scans(), CONNECTIONS, answered)
        took = time.monotonic() - started
        read = await http.get(f"{url}/v1/livecodes/{code}", headers=tenant.headers())
    over = sum(max(n - CAPACITY, 0) for n in given.values())
    free = read.json()["free"]
    print(
        f"\nlive code: {SCANS:,} scans over {CONNECTIONS} connections in {took:.1f} s"
        f" ({SCANS / took:,.0f} scans/s); {sum(given.values()):,} given a place"
        f" (at most {max(given.values())} in a group of {CAPACITY}; over-assigned {over}),"
        f" {free} free left; refused {dict(refused)}"
    )
