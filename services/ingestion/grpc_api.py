"""gRPC: `shequn.v1.IngestService`, with the same rules as `POST /v1/events`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc

from services.gen.shequn.v1 import events_pb2, ingest_pb2, ingest_pb2_grpc
from services.ingestion.events import MAX_BATCH, Rejected, check_event
from services.ingestion.intake import Intake, ItemResult, refused
from services.ingestion.ratelimit import TokenBuckets
from services.runtime.auth import Authenticator, Role
from services.runtime.rpc import GrpcService, authenticate

_STATUS = {
    "accepted": ingest_pb2.PUBLISH_STATUS_ACCEPTED,
    "duplicate": ingest_pb2.PUBLISH_STATUS_DUPLICATE,
    "rejected": ingest_pb2.PUBLISH_STATUS_REJECTED,
}
Context = grpc.aio.ServicerContext[Any, Any]


def _result(r: ItemResult) -> ingest_pb2.PublishResult:
    return ingest_pb2.PublishResult(event_id=r.event_id, status=_STATUS[r.status], error=r.error)


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, intake: Intake, limiter: TokenBuckets, auth: Authenticator) -> None:
        self.intake, self.limiter, self.auth = intake, limiter, auth

    async def Publish(
        self, request: ingest_pb2.PublishRequest, context: Context
    ) -> ingest_pb2.PublishResult:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        await self._rate_limit(context, principal.tenant_id, 1)
        event = request.event
        try:
            check_event(event, tenant_id=principal.tenant_id, received_at=datetime.now(UTC))
        except Rejected as exc:
            refused(principal.tenant_id, event.event_id, str(exc))
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        [result] = await self.intake.accept([event])
        return _result(result)

    async def PublishStream(
        self, request_iterator: AsyncIterator[ingest_pb2.PublishRequest], context: Context
    ) -> ingest_pb2.PublishStreamResponse:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        results: list[ingest_pb2.PublishResult] = []
        chunk: list[events_pb2.Event] = []
        order: list[ItemResult | None] = []

        async def flush() -> None:
            await self._rate_limit(context, principal.tenant_id, len(order))
            accepted = iter(await self.intake.accept(chunk))
            results.extend(_result(r if r is not None else next(accepted)) for r in order)
            chunk.clear()
            order.clear()

        async for request in request_iterator:
            event = request.event
            try:
                check_event(event, tenant_id=principal.tenant_id, received_at=datetime.now(UTC))
                chunk.append(event)
                order.append(None)
            except Rejected as exc:
                order.append(refused(principal.tenant_id, event.event_id, str(exc)))
            if len(order) >= MAX_BATCH:
                await flush()
        if order:
            await flush()
        return ingest_pb2.PublishStreamResponse(results=results)

    async def _rate_limit(self, context: Context, tenant_id: str, count: int) -> None:
        wait = self.limiter.take(tenant_id, count)
        if wait:
            context.set_trailing_metadata((("retry-after", str(int(wait) + 1)),))
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"rate limit: retry in {wait:.1f}s"
            )


def service(intake: Intake, limiter: TokenBuckets, auth: Authenticator) -> GrpcService:
    return GrpcService(
        IngestServicer(intake, limiter, auth),
        ingest_pb2_grpc.add_IngestServiceServicer_to_server,
        ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name,
    )
