"""gRPC: `shequn.v1.IngestService`, with the same rules as `POST /v1/events`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc

from services.gen.shequn.v1 import events_pb2, ingest_pb2, ingest_pb2_grpc
from services.ingestion.admission import Rejected, receive
from services.ingestion.events import MAX_BATCH
from services.ingestion.intake import Intake, ItemResult, refused
from services.runtime.auth import Authenticator, Role
from services.runtime.ratelimit import RateLimited
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
    def __init__(self, intake: Intake, auth: Authenticator) -> None:
        self.intake, self.auth = intake, auth

    async def Publish(
        self, request: ingest_pb2.PublishRequest, context: Context
    ) -> ingest_pb2.PublishResult:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        event = request.event
        try:
            receive(event, tenant_id=principal.tenant_id, received_at=datetime.now(UTC))
        except Rejected as exc:
            refused(principal.tenant_id, event.event_id, str(exc))
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        [result] = await self._accept(context, [event])
        if result.status == "rejected":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, result.error)
        return _result(result)

    async def PublishStream(
        self, request_iterator: AsyncIterator[ingest_pb2.PublishRequest], context: Context
    ) -> ingest_pb2.PublishStreamResponse:
        principal = await authenticate(context, self.auth, Role.OPERATOR)
        results: list[ingest_pb2.PublishResult] = []
        chunk: list[events_pb2.Event] = []
        order: list[ItemResult | None] = []

        async def flush() -> None:
            accepted = iter(await self._accept(context, chunk))
            results.extend(_result(r if r is not None else next(accepted)) for r in order)
            chunk.clear()
            order.clear()

        async for request in request_iterator:
            event = request.event
            try:
                receive(event, tenant_id=principal.tenant_id, received_at=datetime.now(UTC))
                chunk.append(event)
                order.append(None)
            except Rejected as exc:
                order.append(refused(principal.tenant_id, event.event_id, str(exc)))
            if len(order) >= MAX_BATCH:
                await flush()
        if order:
            await flush()
        return ingest_pb2.PublishStreamResponse(results=results)

    async def _accept(self, context: Context, events: list[events_pb2.Event]) -> list[ItemResult]:
        try:
            return await self.intake.accept(events)
        except RateLimited as exc:
            context.set_trailing_metadata((("retry-after", str(int(exc.wait) + 1)),))
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
            raise  # abort raises; this keeps type checkers sure nothing falls through


def service(intake: Intake, auth: Authenticator) -> GrpcService:
    return GrpcService(
        IngestServicer(intake, auth),
        ingest_pb2_grpc.add_IngestServiceServicer_to_server,
        ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name,
    )
