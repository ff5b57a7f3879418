"""What `make bench` reads off the running stack: the raw write ceiling of a database server,
the services' memory, the consumers' busy shares from their metrics, percentiles."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.devtools.stack import SERVICES
from services.runtime.store import client
from tests.conftest import Stack

CONSUMERS = [
    ("ingestion", "ingestion"), ("ingestion", "ingestion-delivery"), ("moderation", "moderation"),
    ("engagement", "engagement"), ("engagement", "engagement-profiles"), ("campaign", "campaign"),
    ("analytics", "analytics"), ("analytics", "analytics-decisions"),
]  # fmt: skip
Totals = dict[str, dict[str, float]]


async def insert_many_ceiling(mongo_url: str, documents: int = 10_000) -> float:
    """Documents/s that one writer gets from `insert_many` of 500 small documents on this
    server, in a scratch database: what the server can do with nothing of ours in the way."""
    mongo = client(mongo_url)
    scratch = mongo[f"bench_ceiling_{uuid.uuid4().hex[:6]}"]["docs"]
    try:
        started = time.perf_counter()
        for start in range(0, documents, 500):
            await scratch.insert_many(
                [{"_id": f"d{i}", "tenant_id": "t", "n": i} for i in range(start, start + 500)]
            )
        return documents / (time.perf_counter() - started)
    finally:
        await mongo.drop_database(scratch.database.name)
        await mongo.close()


def memory_mib(stack: Stack) -> dict[str, float]:
    return {service: stack.memory_kib(service) / 1024 for service in SERVICES}


async def handler_totals(stack: Stack) -> Totals:
    """Per consumer, the sums and counts of its handler-time and batch-size histograms."""
    totals: Totals = {}
    async with httpx.AsyncClient() as http:
        for service, consumer in CONSUMERS:
            text = (await http.get(stack.http(service) + "/metrics")).text
            totals[consumer] = {
                sample.name: sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.labels.get("consumer") == consumer
                and sample.name.endswith(("_sum", "_count"))
            }
    return totals


async def handled(stack: Stack, service: str, consumer: str) -> float:
    """Messages the consumer has handled since it started (its batch-size histogram's sum)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(stack.http(service) + "/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "shequn_batch_messages"
        for sample in family.samples
        if sample.name.endswith("_sum") and sample.labels.get("consumer") == consumer
    )


async def backlog(stack: Stack) -> float:
    """Records not yet handled, over every consumer of every service."""
    total = 0.0
    async with httpx.AsyncClient() as http:
        for service in SERVICES:
            text = (await http.get(stack.http(service) + "/metrics")).text
            total += sum(
                sample.value
                for family in text_string_to_metric_families(text)
                if family.name == "shequn_consumer_lag"
                for sample in family.samples
            )
    return total


async def quiet(stack: Stack, within: float = 900.0) -> None:
    """Until every consumer has caught up (seen twice, the gauges being refreshed each
    second): a round measured with a backlog behind it measures the backlog."""
    deadline, seen = time.monotonic() + within, 0
    while seen < 2 and time.monotonic() < deadline:
        seen = seen + 1 if await backlog(stack) == 0 else 0
        await asyncio.sleep(1.2)


def busy_table(before: Totals, after: Totals, seconds: float) -> list[str]:
    """Where the time went: batches, their size and duration, and the share of the wall clock
    each consumer spent handling them."""
    lines = ["  consumer               batches  events/batch  ms/batch  busy"]
    for _, consumer in CONSUMERS:

        def delta(name: str, consumer: str = consumer) -> float:
            return after[consumer].get(name, 0.0) - before[consumer].get(name, 0.0)

        batches = delta("shequn_handler_seconds_count") or 1
        busy, size = delta("shequn_handler_seconds_sum"), delta("shequn_batch_messages_sum")
        lines.append(
            f"  {consumer:20} {batches:9,.0f} {size / batches:13,.1f}"
            f" {1000 * busy / batches:9,.1f} {busy / seconds:5.0%}"
        )
    return lines


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")
