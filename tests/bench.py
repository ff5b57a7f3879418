"""`make bench`: figures, printed, never asserted.

1. Moderation detection alone, on one core: messages/s with 10,000 banned keywords, and
   precision and recall per class on the labeled set in tests/data/moderation_eval.jsonl.
2. On its own dev stack (rate limit raised out of the way): the HTTP ingest path (events/s
   accepted by `POST /v1/events`, batches of 500, 4 clients), the pipeline (events/s from the
   first post until analytics has counted every event) and gRPC PublishStream.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx

from services.gen.shequn.v1 import common_pb2, events_pb2, ingest_pb2, ingest_pb2_grpc
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
            await bench_http(stack)
            await bench_grpc(stack)
        finally:
            stop_dev_stack(process)


if __name__ == "__main__":
    asyncio.run(main())
