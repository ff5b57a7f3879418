"""`make bench`: figures, printed, never asserted.

1. Moderation detection alone, on one core: messages/s with 10,000 banned keywords, and
   precision and recall per class on the labeled set in tests/data/moderation_eval.jsonl.
2. On its own dev stack (rate limit raised out of the way): the HTTP ingest path (events/s
   accepted by `POST /v1/events`, batches of 500, 4 clients), the pipeline (events/s from the
   first post until analytics has counted every event) and gRPC PublishStream.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.gen.shequn.v1 import actions_pb2, common_pb2, events_pb2, ingest_pb2, ingest_pb2_grpc
from tests.conftest import Stack, create_tenant, start_dev_stack, stop_dev_stack
from tests.moderation.evaluation import bench_detection
from tests.waiting import eventually

EVENTS = 20_000
BATCH = 500
CLIENTS = 4
GROUPS = 200
# Measured in ARCHITECTURE.md on this machine kind, for the ratios below.
NX_INSERT_MANY_DOCS_PER_S = 4600


def _batch(run: str, start: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{run}-{i}",
            "type": "message_posted",
            "group_id": f"g-{i % GROUPS}",
            "member": {"id": f"u-{i % 1000}", "name": "用户"},
            "message": {"text": f"第 {i} 条: 今天有什么优惠吗?"},
        }
        for i in range(start, start + BATCH)
    ]


async def _counted(http: httpx.AsyncClient, stack: Stack, key: str) -> int:
    total = 0
    for g in range(GROUPS):
        r = await http.get(
            stack.http("analytics") + f"/v1/stats/groups/g-{g}/daily",
            headers={"Authorization": f"Bearer {key}"},
        )
        total += sum(day["messages"] for day in r.json()["days"])
    return total


async def bench_http(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    run = uuid.uuid4().hex[:6]
    queue = list(range(0, EVENTS, BATCH))
    async with httpx.AsyncClient(timeout=60, headers=tenant.headers("operator")) as http:

        async def client() -> None:
            while queue:
                body = {"events": _batch(run, queue.pop())}
                r = await http.post(stack.http("ingestion") + "/v1/events", json=body)
                assert r.status_code == 202, r.text

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        ingest = time.perf_counter() - started
        await eventually(
            lambda: _counted(http, stack, tenant.viewer), lambda n: n >= EVENTS, 300, 0.5
        )
        pipeline = time.perf_counter() - started
    rate = EVENTS / ingest
    print(f"HTTP ingest        {EVENTS} events in {ingest:.2f}s = {rate:,.0f} events/s")
    print(
        f"                   ratio to NX-27017 insert_many alone: "
        f"{rate / NX_INSERT_MANY_DOCS_PER_S:.2f}"
    )
    print(
        f"pipeline (counted) {EVENTS} events in {pipeline:.2f}s = {EVENTS / pipeline:,.0f} events/s"
    )


async def bench_grpc(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    run = uuid.uuid4().hex[:6]

    async def requests() -> Any:
        for i in range(EVENTS):
            event = events_pb2.Event(event_id=f"{run}-{i}", group_id=f"g-{i % GROUPS}")
            event.message_posted.member.CopyFrom(common_pb2.Member(id=f"u-{i % 1000}"))
            event.message_posted.message.text = f"第 {i} 条"
            yield ingest_pb2.PublishRequest(event=event)

    async with grpc.aio.insecure_channel(stack.grpc("ingestion")) as channel:
        started = time.perf_counter()
        response = await ingest_pb2_grpc.IngestServiceStub(channel).PublishStream(
            requests(), metadata=(("authorization", f"Bearer {tenant.operator}"),)
        )
        took = time.perf_counter() - started
    accepted = sum(r.status == ingest_pb2.PUBLISH_STATUS_ACCEPTED for r in response.results)
    print(f"gRPC PublishStream {accepted} events in {took:.2f}s = {accepted / took:,.0f} events/s")


async def _handler_totals(stack: Stack, service: str, consumer: str) -> dict[str, float]:
    """The sums and counts of a consumer's handler-time and batch-size histograms."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(stack.http(service) + "/metrics")).text
    totals = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("consumer") == consumer and sample.name.endswith(
                ("_sum", "_count")
            ):
                totals[sample.name] = sample.value
    return totals


CONSUMERS = [
    ("ingestion", "ingestion"), ("ingestion", "ingestion-delivery"), ("moderation", "moderation"),
    ("engagement", "engagement"), ("campaign", "campaign"), ("analytics", "analytics"),
    ("analytics", "analytics-decisions"),
]  # fmt: skip


async def bench_moderation_latency(stack: Stack, rate: int = 500, seconds: int = 20) -> None:
    """Events produced to Kafka at a steady rate, one in 20 an ad from a new member; the time
    from an ad entering the events topic to its warning leaving on the actions topic (both
    Kafka record timestamps, one clock)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    tenant = await create_tenant(stack)
    run = uuid.uuid4().hex[:6]
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka, linger_ms=2)
    consumer = AIOKafkaConsumer(
        "shequn.actions.v1", bootstrap_servers=stack.kafka, group_id=f"bench-{run}",
        auto_offset_reset="latest", enable_auto_commit=False,
    )  # fmt: skip
    await producer.start()
    await consumer.start()
    await asyncio.sleep(6)  # the consumer's group join, so that no action is missed
    handled_before = {c: await _handler_totals(stack, s, c) for s, c in CONSUMERS}
    entered: dict[str, int] = {}
    left: dict[str, int] = {}
    pending: dict[str, Any] = {}

    async def collect() -> None:
        while True:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                for m in batch:
                    action = actions_pb2.Action.FromString(m.value)
                    if action.cause_event_id.startswith(f"lat-{run}-") and action.HasField(
                        "send_text"
                    ):
                        left.setdefault(action.cause_event_id, m.timestamp)

    collector = asyncio.create_task(collect())
    started = time.perf_counter()
    for i in range(rate * seconds):
        event = events_pb2.Event(
            event_id=f"lat-{run}-{i}", tenant_id=tenant.id, group_id=f"g-{i % 50}",
            platform=common_pb2.PLATFORM_SIM,
        )  # fmt: skip
        event.occurred_at.GetCurrentTime()
        event.received_at.GetCurrentTime()
        ad = i % 20 == 0
        event.message_posted.member.CopyFrom(
            common_pb2.Member(id=f"u-{i}" if ad else f"u-{i % 997}")
        )
        event.message_posted.message.text = (
            "加微信 vx: shop_8888 领福利" if ad else f"今天有什么优惠吗 {i}"
        )
        key = f"{tenant.id}:{event.group_id}".encode()
        sent = await producer.send("shequn.events.v1", event.SerializeToString(), key=key)
        if ad:
            pending[event.event_id] = sent
        behind = (i + 1) / rate - (time.perf_counter() - started)
        if behind > 0:
            await asyncio.sleep(behind)
    sent_for = time.perf_counter() - started
    for event_id, sent in pending.items():
        entered[event_id] = (await sent).timestamp

    async def answered() -> int:
        return len(left)

    with contextlib.suppress(AssertionError):  # report what arrived within the minute
        await eventually(answered, lambda n: n >= len(entered), within=60, every=0.5)
    collector.cancel()
    await producer.stop()
    await consumer.stop()
    handled = {c: await _handler_totals(stack, s, c) for s, c in CONSUMERS}
    latencies = sorted(left[e] - entered[e] for e in left)
    if not latencies:
        print("moderation latency: no actions seen")
        return

    def pct(p: float) -> int:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    print(
        f"moderation         {rate * seconds} events at {rate * seconds / sent_for:,.0f}/s; "
        f"{len(latencies)}/{len(entered)} ads answered"
    )
    print(
        f"  event in Kafka → warning on the actions topic: p50 {pct(0.5)} ms, "
        f"p99 {pct(0.99)} ms, max {latencies[-1]} ms "
        f"(target p99 < 100 ms: ratio {pct(0.99) / 100:.2f})"
    )

    # Where the time went: every consumer shares the one database process.
    print("  consumers meanwhile    batches  events/batch  ms/batch  busy")
    for _, consumer in CONSUMERS:

        def delta(name: str, consumer: str = consumer) -> float:
            return handled[consumer].get(name, 0.0) - handled_before[consumer].get(name, 0.0)

        batches = delta("shequn_handler_seconds_count") or 1
        busy, size = delta("shequn_handler_seconds_sum"), delta("shequn_batch_messages_sum")
        print(
            f"    {consumer:20} {batches:7,.0f} {size / batches:13,.1f}"
            f" {1000 * busy / batches:9,.1f} {busy / sent_for:5.0%}"
        )


async def main() -> None:
    bench_detection()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "SHEQUN_INGEST_RATE_PER_TENANT": "1000000",
            "SHEQUN_INGEST_BURST_PER_TENANT": "1000000",
            "SHEQUN_KAFKA_BOOTSTRAP": "",
            "SHEQUN_MONGO_URL": "",
            "SHEQUN_LOG_LEVEL": "WARNING",
        }
        process, info = start_dev_stack(Path(tmp) / "stack", env)
        try:
            stack = Stack(info, Path(tmp) / "stack")
            print(f"machine: {sys.platform}, python {sys.version.split()[0]}")
            await bench_moderation_latency(stack)
            await bench_http(stack)
            await bench_grpc(stack)
        finally:
            stop_dev_stack(process)


if __name__ == "__main__":
    asyncio.run(main())
