"""Live-code scans at the public endpoint: 20 clients scanning as fast as they are answered (more
would measure httpx's pool: one Python client tops out near 100 requests/s with 200 at once),
each scan from an address of its own (people scan, not one machine), a pool of 10 groups of 200
places, 5,000 scans in all. Prints scans/s and the places given per
group: never more than the capacity, and exactly the pool's 2,000 in all."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx

from tests.conftest import Stack, create_tenant

GROUPS, CAPACITY, SCANS, CLIENTS = 10, 200, 5_000, 20


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
        left = iter(range(SCANS))

        async def client() -> None:
            for i in left:
                answer = await http.post(
                    f"{url}/v1/livecodes/{code}/scan",
                    json={},
                    headers={"x-forwarded-for": f"10.0.{i // 250}.{i % 250}"},
                )
                if answer.status_code == 200:
                    given[answer.json()["group_id"]] += 1
                else:
                    refused[answer.status_code] += 1

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        took = time.monotonic() - started
        read = await http.get(f"{url}/v1/livecodes/{code}", headers=tenant.headers())
    over = sum(max(n - CAPACITY, 0) for n in given.values())
    free = read.json()["free"]
    print(
        f"\nlive code: {SCANS:,} scans by {CLIENTS} clients in {took:.1f} s"
        f" ({SCANS / took:,.0f} scans/s); {sum(given.values()):,} given a place"
        f" (at most {max(given.values())} in a group of {CAPACITY}; over-assigned {over}),"
        f" {free} free left; refused {dict(refused)}"
    )
