"""The pipeline end to end: ingestion over HTTP and gRPC → Kafka → analytics → MongoDB → HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.gen.shequn.v1 import common_pb2, events_pb2, ingest_pb2, ingest_pb2_grpc
from tests.clients import count, group_day, joined, message, post_events
from tests.conftest import Stack, Tenant
from tests.waiting import eventually, stays


def _counts(row: dict[str, int]) -> tuple[int, int, int]:
    return row["messages"], row["joins"], row["leaves"]


async def test_events_over_http_and_grpc_are_counted(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    left = {**joined(group, "u-3"), "type": "member_left", "reason": "kicked"}
    response = await post_events(http, stack, tenant, [message(group), joined(group, "u-2"), left])
    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == ["accepted"] * 3

    event = events_pb2.Event(event_id=f"ev-{uuid.uuid4().hex}", group_id=group)
    event.message_posted.member.CopyFrom(common_pb2.Member(id="u-9", name="阿强"))
    event.message_posted.message.text = "从 gRPC 来的消息"
    async with grpc.aio.insecure_channel(stack.grpc("ingestion")) as channel:
        result = await ingest_pb2_grpc.IngestServiceStub(channel).Publish(
            ingest_pb2.PublishRequest(event=event),
            metadata=(("authorization", f"Bearer {tenant.operator}"),),
        )
    assert result.status == ingest_pb2.PUBLISH_STATUS_ACCEPTED

    row = await eventually(
        lambda: group_day(http, stack, tenant, group), lambda r: _counts(r) == (2, 1, 1)
    )
    assert row["active_members"] == 2
    assert row["kicks"] == 1

    exported = (await http.get(stack.http("analytics") + "/metrics")).text
    for series in (
        'shequn_consumed_messages_total{consumer="analytics",topic="shequn.events.v1"}',
        'shequn_handler_seconds_count{consumer="analytics"}',
        'shequn_consumer_lag{consumer="analytics",partition=',
        'shequn_dead_lettered_total{consumer="analytics",reason="invalid"}',
    ):
        assert series in exported
    ingested = (await http.get(stack.http("ingestion") + "/metrics")).text
    assert 'shequn_events_ingested_total{status="accepted",type="message_posted"}' in ingested


async def test_same_event_id_posted_twice_is_counted_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    event = message(group)
    first = await post_events(http, stack, tenant, event)
    again = await post_events(http, stack, tenant, event)
    assert first.json()["results"][0]["status"] == "accepted"
    assert again.json()["results"][0]["status"] == "duplicate"

    await eventually(lambda: group_day(http, stack, tenant, group), lambda r: r["messages"] == 1)
    await stays(lambda: count(http, stack, tenant, group, "messages"), 1)


async def test_a_kafka_message_delivered_twice_is_counted_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """A redelivery reaches analytics at a new offset, as after a broker restart or a retry."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    response = await post_events(http, stack, tenant, [message(group), message(group)])
    assert response.status_code == 202
    await eventually(lambda: group_day(http, stack, tenant, group), lambda r: r["messages"] == 2)

    # Read the two messages back off the topic and put them on it again, byte for byte.
    wanted = {r["event_id"] for r in response.json()["results"]}
    consumer = AIOKafkaConsumer(
        "shequn.events.v1",
        bootstrap_servers=stack.kafka,
        auto_offset_reset="earliest",
        group_id=f"test-{uuid.uuid4().hex}",
        enable_auto_commit=False,
    )
    await consumer.start()
    originals: list[Any] = []
    try:
        while len(originals) < 2:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                for m in batch:
                    if events_pb2.Event.FromString(m.value).event_id in wanted:
                        originals.append(m)
    finally:
        await consumer.stop()
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka)
    await producer.start()
    try:
        for m in originals:
            await producer.send_and_wait(m.topic, m.value, key=m.key)
    finally:
        await producer.stop()

    marker = message(group, member_id="u-marker")
    await post_events(http, stack, tenant, marker)
    # The marker comes after the copies in the group's partition: once it is counted, so are they.
    row = await eventually(
        lambda: group_day(http, stack, tenant, group), lambda r: r["active_members"] == 2
    )
    assert row["messages"] == 3
    await stays(lambda: count(http, stack, tenant, group, "messages"), 3)


async def test_an_undecodable_message_is_dead_lettered_and_the_rest_flows(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    key = f"{tenant.id}:{group}".encode()
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka)
    await producer.start()
    try:
        await producer.send_and_wait("shequn.events.v1", b"\xff\xffnot protobuf", key=key)
    finally:
        await producer.stop()
    await post_events(http, stack, tenant, [message(group), message(group)])
    await eventually(lambda: group_day(http, stack, tenant, group), lambda r: r["messages"] == 2)

    consumer = AIOKafkaConsumer(
        "shequn.dlq.analytics",
        bootstrap_servers=stack.kafka,
        auto_offset_reset="earliest",
        group_id=f"test-{uuid.uuid4().hex}",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:

        async def dead_letters() -> list[dict[str, bytes]]:
            polled = await consumer.getmany(timeout_ms=500)
            found.extend(dict(m.headers) for b in polled.values() for m in b if m.key == key)
            return found

        found: list[dict[str, bytes]] = []
        [headers] = await eventually(dead_letters, lambda f: len(f) >= 1)
    finally:
        await consumer.stop()
    assert headers["dlq.reason"] == b"invalid"
    assert b"not a shequn.v1.Event" in headers["dlq.error"]
    assert headers["dlq.origin"].startswith(b"shequn.events.v1:")
