"""`shequn.v1.IngestService` over real gRPC, with health and reflection."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.gen.shequn.v1 import common_pb2, events_pb2, ingest_pb2, ingest_pb2_grpc
from tests.conftest import Stack, Tenant


def _message(group: str, event_id: str | None = None) -> events_pb2.Event:
    event_id = f"ev-{uuid.uuid4().hex}" if event_id is None else event_id
    event = events_pb2.Event(event_id=event_id, group_id=group)
    event.message_posted.member.CopyFrom(common_pb2.Member(id="u-1"))
    event.message_posted.message.text = "你好"
    return event


def _auth(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)


async def test_publish_validates_like_http(stack: Stack, tenant: Tenant) -> None:
    async with grpc.aio.insecure_channel(stack.grpc("ingestion")) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        missing_id = _message("g-1", event_id="")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Publish(
                ingest_pb2.PublishRequest(event=missing_id), metadata=_auth(tenant.operator)
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert str(refused.value.details()).startswith("event_id:")

        no_payload = events_pb2.Event(event_id="ev-x", group_id="g-1")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Publish(
                ingest_pb2.PublishRequest(event=no_payload), metadata=_auth(tenant.operator)
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert str(refused.value.details()).startswith("payload:")

        ahead = _message("g-1")
        ahead.occurred_at.FromDatetime(datetime.now(UTC) + timedelta(days=1))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Publish(
                ingest_pb2.PublishRequest(event=ahead), metadata=_auth(tenant.operator)
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert str(refused.value.details()).startswith("occurred_at: more than 600 s after")

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Publish(ingest_pb2.PublishRequest(event=_message("g-1")))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Publish(
                ingest_pb2.PublishRequest(event=_message("g-1")), metadata=_auth(tenant.viewer)
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_publish_stream_answers_per_item(stack: Stack, tenant: Tenant) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    good = _message(group)
    requests = [good, _message(group, event_id=""), good]

    async def stream() -> AsyncIterator[ingest_pb2.PublishRequest]:
        for event in requests:
            yield ingest_pb2.PublishRequest(event=event)

    async with grpc.aio.insecure_channel(stack.grpc("ingestion")) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        response = await stub.PublishStream(stream(), metadata=_auth(tenant.operator))
    assert [r.status for r in response.results] == [
        ingest_pb2.PUBLISH_STATUS_ACCEPTED,
        ingest_pb2.PUBLISH_STATUS_REJECTED,
        ingest_pb2.PUBLISH_STATUS_DUPLICATE,
    ]
    assert response.results[1].error.startswith("event_id:")


async def test_a_picture_url_over_its_cap_is_refused(stack: Stack, tenant: Tenant) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    long_link = _message(group)
    long_link.message_posted.message.media_url = "https://cdn.example.com/" + "a" * 2048
    inline = _message(group)
    inline.message_posted.message.media_url = "data:image/png;base64," + "A" * 100_000

    async def stream() -> AsyncIterator[ingest_pb2.PublishRequest]:
        for event in (long_link, inline):
            yield ingest_pb2.PublishRequest(event=event)

    async with grpc.aio.insecure_channel(stack.grpc("ingestion")) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Publish(
                ingest_pb2.PublishRequest(event=long_link), metadata=_auth(tenant.operator)
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert str(refused.value.details()).startswith("message_posted.message.media_url: ")
        response = await stub.PublishStream(stream(), metadata=_auth(tenant.operator))
    assert [r.status for r in response.results] == [
        ingest_pb2.PUBLISH_STATUS_REJECTED,
        ingest_pb2.PUBLISH_STATUS_ACCEPTED,
    ]
    assert response.results[0].error.startswith("message_posted.message.media_url: too long")


async def test_an_event_with_too_many_entries_is_refused(stack: Stack, tenant: Tenant) -> None:
    event = _message(f"g-{uuid.uuid4().hex[:8]}")
    event.message_posted.message.urls.extend(["https://example.com/x"] * 1_001)
    async with grpc.aio.insecure_channel(stack.grpc("ingestion")) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Publish(
                ingest_pb2.PublishRequest(event=event), metadata=_auth(tenant.operator)
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(refused.value.details()) == "message_posted.message.urls: at most 1000 entries"


@pytest.mark.parametrize(
    "service", ["ingestion", "moderation", "engagement", "campaign", "analytics"]
)
async def test_every_service_has_grpc_health_and_reflection(stack: Stack, service: str) -> None:
    async with grpc.aio.insecure_channel(stack.grpc(service)) as channel:
        # The stubs of these two packages are typed for synchronous channels only.
        health_stub: Any = health_pb2_grpc.HealthStub(channel)
        health = await health_stub.Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflection: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
        call = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name async for r in call for s in r.list_services_response.service}
    assert "grpc.health.v1.Health" in names
    if service == "ingestion":
        assert "shequn.v1.IngestService" in names
