"""The grpc.aio server of every service: standard health and reflection, and API-key auth."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.struct_pb2 import Struct
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.runtime.auth import Authenticator, AuthError, Principal, Role, bearer
from services.runtime.refusals import Refused

_CODES = {
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    422: grpc.StatusCode.INVALID_ARGUMENT,
}
Context = grpc.aio.ServicerContext[Any, Any]
S = TypeVar("S")
Req = TypeVar("Req")
Rep = TypeVar("Rep")


@dataclass(frozen=True)
class GrpcService:
    """A servicer, the generated function that registers it, and its full name for reflection."""

    servicer: Any
    register: Callable[[Any, grpc.aio.Server], None]
    name: str


class GrpcServer:
    def __init__(self, host: str, port: int, services: Sequence[GrpcService]) -> None:
        self.server = grpc.aio.server()
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        for s in services:
            s.register(s.servicer, self.server)
        names = [s.name for s in services]
        reflection.enable_server_reflection(
            [
                *names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            self.server,
        )
        self.names = names
        self.port = self.server.add_insecure_port(f"{host}:{port}")

    async def start(self) -> None:
        await self.server.start()
        for name in ["", *self.names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def struct_of(value: dict[str, Any]) -> Struct:
    """A JSON-shaped value as a protobuf Struct, as the APIs send settings and records."""
    found = Struct()
    found.update(value)
    return found


async def authenticate(context: Context, auth: Authenticator, role: Role) -> Principal:
    """The caller's principal from `authorization: Bearer <key>` metadata, or abort."""
    header = dict(context.invocation_metadata() or ()).get("authorization")
    try:
        return await auth.authenticate(bearer(header if isinstance(header, str) else None), role)
    except AuthError as exc:
        await context.abort(_CODES[exc.status], str(exc))
        raise  # abort raises; this keeps type checkers sure the function never falls through


def answers_refusals(
    method: Callable[[S, Req, Context], Awaitable[Rep]],
) -> Callable[[S, Req, Context], Awaitable[Rep]]:
    """A servicer method whose operations' refusals become the matching status codes."""

    @functools.wraps(method)
    async def call(self: S, request: Req, context: Context) -> Rep:
        try:
            return await method(self, request, context)
        except Refused as exc:
            await context.abort(_CODES[exc.status], str(exc))
            raise

    return call
