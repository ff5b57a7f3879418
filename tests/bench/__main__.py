"""`make bench`: figures, printed, never asserted.

1. Moderation's detection alone, on one core: messages/s with 10,000 banned keywords, and
   precision and recall per class on the labeled set in tests/data/moderation_eval.jsonl.
2. The dev stack as `make dev` starts it (rate limit out of the way), measured twice: fresh,
   and again after 200,000 events of history (once every consumer has caught up with them).
   Each round measures, in order:
   - the raw `insert_many` ceiling of ingestion's database server, for the ratio below;
   - every service's memory at rest;
   - the reaction time: ordinary chat at 500 events/s from 200 groups and 20,000 members, an
     ad on a Telegram group every half second, from the ad's `POST /v1/events` to its warning
     arriving at a stand-in Telegram Bot API (p50, p99), with memory under that load and
     each consumer's busy share;
   - HTTP ingest (20,000 events in posts of 500 from 4 clients) as a share of that ceiling, and
     the pipeline (events/s from the first post until analytics has counted them all).
   In the same round, a join on a Telegram group every half second, from its POST to the
   welcome at the Bot API (the tenant's combine window and hold set to 0: the machinery's
   time); and with the pipeline, engagement's events/s.
3. On the stack with history: gRPC PublishStream, 1,000 concurrent lottery draws, 12,000
   live-code scans over 64 connections (scans/s, over-assignment), an SOP slot for 1,000
   groups (fired and delivered after its instant), a broadcast to 200 groups, and analytics'
   statistics over 90 days of a tenant with 1,000 groups (sent through the pipeline first).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from services.devtools.stack import SERVICES
from tests.bench import figures, traffic
from tests.bench.campaign import bench_broadcast, bench_sop
from tests.bench.draws import bench_draws
from tests.bench.grpc import bench_grpc
from tests.bench.scans import bench_scans
from tests.bench.statistics import bench_statistics
from tests.clients import put_telegram
from tests.conftest import Stack, Tenant, create_tenant, start_dev_stack, stop_dev_stack
from tests.fakes import FakeTelegram, fake_telegram
from tests.moderation.evaluation import bench_detection
from tests.waiting import eventually

HISTORY = int(os.environ.get("BENCH_HISTORY", "200000"))  # smaller for a quick look
PIPELINE_EVENTS = 20_000
RATE, SECONDS, AD_EVERY = 500, 30, 0.5
TARGETS = {"reaction p99 ms": 250.0, "pipeline events/s": 1000.0, "ingest / ceiling": 0.25}
Figures = dict[str, float]


async def _tenant_on_telegram(stack: Stack, http: httpx.AsyncClient, fake: FakeTelegram) -> Tenant:
    tenant = await create_tenant(stack)
    await put_telegram(http, stack.http("ingestion"), tenant.headers("owner"), fake.url)
    # Welcomes as soon as engagement can: the machinery's time, not the combine window's
    # 60 s or the default 2 s hold for moderation's word.
    welcome = {"welcome": {"combine_window_seconds": 0, "hold_seconds": 0}}
    response = await http.put(
        stack.http("engagement") + "/v1/engagement/settings",
        json=welcome,
        headers=tenant.headers("admin"),
    )
    assert response.status_code == 200, response.text
    return tenant


class Counting:
    """When a service's consumers have handled `n` more events (analytics: counted them for a
    tenant). Watched through the consumer's count of handled messages, one small request a
    quarter of a second (reading every group's counts each second took a quarter of
    analytics' CPU away from what it measured, and told the end to a second); for analytics
    then confirmed through the API."""

    def __init__(self, stack: Stack, service: str = "analytics", *consumers: str) -> None:
        self.stack, self.service = stack, service
        self.consumers = consumers or (service,)
        self.since: dict[str, float] = {}

    async def start(self) -> None:
        self.since = await self._handled()

    async def _handled(self) -> dict[str, float]:
        return {c: await figures.handled(self.stack, self.service, c) for c in self.consumers}

    async def handled(self, n: int) -> float:
        """When every consumer had handled `n` more (time.monotonic())."""
        await eventually(
            self._handled, lambda h: all(h[c] - self.since[c] >= n for c in h), 900, 0.25
        )
        return time.monotonic()

    async def done(self, http: httpx.AsyncClient, tenant: Tenant, n: int) -> float:
        """Waits, and returns when (time.monotonic())."""
        counted = await self.handled(n)
        if await traffic.counted(http, self.stack, tenant) < n:  # others' were among them
            await eventually(
                lambda: traffic.counted(http, self.stack, tenant), lambda c: c >= n, 900, 1.0
            )
            counted = time.monotonic()
        return counted


async def measure(stack: Stack, fake: FakeTelegram, label: str) -> Figures:
    await figures.quiet(stack)
    found: Figures = {}
    found["ceiling docs/s"] = await figures.insert_many_ceiling(stack.mongo_of("ingestion"))
    for service, mib in figures.memory_mib(stack).items():
        found[f"RSS at rest MiB: {service}"] = mib

    async with httpx.AsyncClient(timeout=60) as owner_http:
        tenant = await _tenant_on_telegram(stack, owner_http, fake)
    async with httpx.AsyncClient(timeout=60, headers=tenant.headers("operator")) as http:
        under_load: dict[str, float] = {}

        async def read_memory() -> None:
            under_load.update(figures.memory_mib(stack))

        counting = Counting(stack)
        await counting.start()
        before = await figures.handler_totals(stack)
        started = time.monotonic()
        reactions, joins, sent, rate = await traffic.chat_with_ads(
            http, stack, rate=RATE, seconds=SECONDS, ad_every=AD_EVERY, halfway=read_memory
        )
        chatted = time.monotonic() - started
        busy = figures.busy_table(before, await figures.handler_totals(stack), chatted)
        ads = len(reactions.posted)
        answered = await eventually(
            lambda: _answered(reactions, fake), lambda a: len(a) >= ads, 60, 0.5
        )
        latencies = list(answered.values())
        found["chat events/s"] = rate
        found["reaction p50 ms"] = figures.percentile(latencies, 0.5)
        found["reaction p99 ms"] = figures.percentile(latencies, 0.99)
        welcomed = await eventually(
            lambda: _answered(joins, fake), lambda a: len(a) >= len(joins.posted), 60, 0.5
        )
        found["join → welcome p50 ms"] = figures.percentile(list(welcomed.values()), 0.5)
        found["join → welcome p99 ms"] = figures.percentile(list(welcomed.values()), 0.99)
        for service, mib in under_load.items():
            found[f"RSS under load MiB: {service}"] = mib
        print(f"[{label}] {ads} ads, {len(latencies)} warned; chat at {rate:,.0f} events/s")
        print("\n".join(busy))
        await counting.done(http, tenant, sent)

        pipeline_tenant = await create_tenant(stack)
    async with httpx.AsyncClient(timeout=60, headers=pipeline_tenant.headers("operator")) as http:
        engaging = Counting(stack, "engagement", "engagement", "engagement-profiles")
        await counting.start()
        await engaging.start()
        started = time.monotonic()
        found["HTTP ingest events/s"] = await traffic.flood(http, stack, PIPELINE_EVENTS)
        engaged = asyncio.create_task(engaging.handled(PIPELINE_EVENTS))
        counted = await counting.done(http, pipeline_tenant, PIPELINE_EVENTS)
        found["pipeline events/s"] = PIPELINE_EVENTS / (counted - started)
        found["engagement events/s"] = PIPELINE_EVENTS / (await engaged - started)
    found["ingest / ceiling"] = found["HTTP ingest events/s"] / found["ceiling docs/s"]
    return found


async def _answered(reactions: traffic.Reactions, fake: FakeTelegram) -> dict[str, float]:
    return reactions.answered(fake)


async def add_history(stack: Stack, events: int) -> float:
    """`events` of chat from one tenant, waited for until analytics has counted them all."""
    tenant = await create_tenant(stack)
    counting = Counting(stack)
    await counting.start()
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=120, headers=tenant.headers("operator")) as http:
        await traffic.flood(http, stack, events)
        await counting.done(http, tenant, events)
    await figures.quiet(stack)  # every consumer, not only analytics
    return time.monotonic() - started


def report(fresh: Figures, history: Figures, state_dir: Path) -> None:
    print(f"\n{'':34}{'fresh':>12}{'history':>12}{'ratio':>8}{'target':>10}")
    names = [n for n in fresh if not n.startswith("RSS")] + sorted(
        n for n in fresh if n.startswith("RSS")
    )
    for name in names:
        a, b = fresh[name], history[name]
        target = TARGETS.get(name)
        line = f"{name:34}{a:12,.2f}{b:12,.2f}{b / a if a else float('nan'):8.2f}"
        print(line + (f"{target:10,.2f}" if target else ""))
    mib = sum(p.stat().st_size for p in (state_dir / "mongo").rglob("*") if p.is_file()) / 2**20
    print(f"database files after the history: {mib:,.0f} MiB")
    print(
        "memory goal: 150 MiB a service; over it: "
        + (", ".join(s for s in SERVICES if history[f"RSS under load MiB: {s}"] > 150) or "none")
    )


async def main() -> None:
    if not os.environ.get("BENCH_HISTORY"):
        bench_detection()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "SHEQUN_INGEST_RATE_PER_TENANT": "1000000",
            "SHEQUN_INGEST_BURST_PER_TENANT": "1000000",
            "SHEQUN_LIVECODE_SCANS_PER_SECOND": "1000000",  # the server's pace, not the limit's
            "SHEQUN_KAFKA_BOOTSTRAP": "",
            "SHEQUN_MONGO_URL": "",
            "SHEQUN_LOG_LEVEL": "WARNING",
            "SHEQUN_OUTBOUND_ALLOW_PRIVATE_HOSTS": "true",  # the stand-in Bot API is local
        }
        state_dir = Path(tmp) / "stack"
        process, info = start_dev_stack(state_dir, env)
        try:
            stack = Stack(info, state_dir)
            print(f"machine: {sys.platform}, python {sys.version.split()[0]}")
            async with fake_telegram() as fake:
                results: dict[str, Any] = {"fresh": await measure(stack, fake, "fresh")}
                took = await add_history(stack, HISTORY)
                print(f"history: {HISTORY:,} events through the pipeline in {took:,.0f} s")
                results["history"] = await measure(stack, fake, "history")
            report(results["fresh"], results["history"], state_dir)
            await bench_grpc(stack)
            await figures.quiet(stack)  # the stream's events handled everywhere first
            await bench_draws(stack)
            await bench_scans(stack)
            await figures.quiet(stack)  # the scans' events handled everywhere first
            await bench_sop(stack)
            await bench_broadcast(stack)
            await bench_statistics(stack)
        finally:
            stop_dev_stack(process)


if __name__ == "__main__":
    asyncio.run(main())
