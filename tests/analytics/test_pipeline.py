"""The pipeline end to end: ingestion over HTTP and gRPC → Kafka → analytics → MongoDB → HTTP."""

from __future__ import annotations

import uuid

import grpc
import httpx

from services.gen.shequn.v1 import common_pb2, events_pb2, ingest_pb2, ingest_pb2_grpc
from tests.clients import count, dead_lettered, group_day, joined, message, post_events
from tests.conftest import Stack, Tenant
from tests.kafka import event_id_of, produce, read_topic
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

    async def analytics_metrics() -> str:
        return (await http.get(stack.http("analytics") + "/metrics")).text

    # The counts are visible once written, before the handler returns and is timed; lag is
    # refreshed at most once a second. So the metrics may trail the counts a little.
    expected = (
        'shequn_consumed_messages_total{consumer="analytics",topic="shequn.events.v1"}',
        'shequn_handler_seconds_count{consumer="analytics"}',
        'shequn_consumer_lag{consumer="analytics",partition=',
    )
    await eventually(analytics_metrics, lambda text: all(s in text for s in expected))
    ingested = (await http.get(stack.http("ingestion") + "/metrics")).text
    assert 'shequn_events_ingested_total{status="accepted",type="message_posted"}' in ingested
    # When the tenant's last event was accepted, for the alert on a tenant gone quiet.
    assert f'shequn_tenant_last_event_timestamp_seconds{{tenant="{tenant.id}"}}' in ingested


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
    originals = await read_topic(
        stack.kafka, "shequn.events.v1", 2, lambda m: _event_id(m.value) in wanted
    )
    await produce(stack.kafka, [(m.topic, m.key, m.value) for m in originals])

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
    await produce(stack.kafka, [("shequn.events.v1", key, b"\xff\xffnot protobuf")])
    await post_events(http, stack, tenant, [message(group), message(group)])
    await eventually(lambda: group_day(http, stack, tenant, group), lambda r: r["messages"] == 2)

    [dead] = await read_topic(stack.kafka, "shequn.dlq.analytics", 1, lambda m: m.key == key)
    headers = dict(dead.headers)
    assert headers["dlq.reason"] == b"invalid"
    exported = (await http.get(stack.http("analytics") + "/metrics")).text
    [line] = [
        line
        for line in exported.splitlines()
        if line.startswith('shequn_dead_lettered_total{consumer="analytics",reason="invalid"}')
    ]
    assert float(line.rsplit(" ", 1)[1]) >= 1
    assert b"not a shequn.v1.Event" in headers["dlq.error"]
    assert headers["dlq.origin"].startswith(b"shequn.events.v1:")


def _event_id(raw: bytes) -> str | None:
    return event_id_of(raw)


async def test_moderation_decisions_are_counted_as_violations_once(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ads = [message(group, f"u-{i}", "加 微 信 领福利 vx: shop_8888") for i in range(2)]
    await post_events(http, stack, tenant, [*ads, message(group, "u-3", "今天天气不错")])
    # Two consumers count them: decisions (violations) and events (messages).
    await eventually(
        lambda: group_day(http, stack, tenant, group),
        lambda r: r["violations"] == 2 and r["messages"] == 3,
    )

    # Decisions read again (a rebalance, a redelivery) count nothing twice.
    key = f"{tenant.id}:{group}".encode()
    records = await read_topic(stack.kafka, "shequn.decisions.v1", 2, lambda m: m.key == key)
    await produce(stack.kafka, [(r.topic, r.key, r.value) for r in records])
    await stays(lambda: count(http, stack, tenant, group, "violations"), 2)


async def test_violations_of_messages_with_a_thousand_links_are_all_counted(
    stack: Stack, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """60 such messages made decisions whose explanation was 101,711 characters, which
    analytics dead-lettered: those violations were missing from the statistics."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    links = [f"https://spam{i}.example.cn/x" for i in range(1000)]
    before = await dead_lettered(http, stack)
    spam = [
        message(
            group, f"u-{i}", "看看这些", message={"id": f"m-{i}", "text": "看看", "urls": links}
        )
        for i in range(60)
    ]
    response = await post_events(http, stack, tenant, spam)
    assert {r["status"] for r in response.json()["results"]} == {"accepted"}
    await eventually(
        lambda: count(http, stack, tenant, group, "violations"), lambda n: n == 60, within=60
    )
    assert await dead_lettered(http, stack) == before
