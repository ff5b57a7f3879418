"""gRPC PublishStream: one stream of 20,000 events, accepted per second."""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc

from services.gen.shequn.v1 import common_pb2, events_pb2, ingest_pb2, ingest_pb2_grpc
from tests.bench.traffic import GROUPS
from tests.conftest import Stack, create_tenant

EVENTS = 20_000


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
