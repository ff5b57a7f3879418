"""The FastAPI app factory: health, readiness, metrics and authentication for every service."""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, TypeVar

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.runtime import metrics
from services.runtime import openapi as openapi_document
from services.runtime.auth import Authenticator, AuthError, Principal, Role, bearer
from services.runtime.refusals import Refused, invalid
from services.runtime.wellformed import KEY_PART, KEY_PART_RULE

log = logging.getLogger(__name__)
T = TypeVar("T")
Readiness = Callable[[], Awaitable[dict[str, bool]]]


def create_app(
    *,
    service: str,
    auth: Authenticator,
    readiness: Readiness,
    routers: Sequence[APIRouter] = (),
    schemas: Mapping[str, Any] | None = None,
    max_body_bytes: int = 16 * 1024 * 1024,
    provides: Sequence[object] = (),
) -> FastAPI:
    """`schemas` are extra OpenAPI components, for bodies that routes validate by hand;
    `provides` are what routes depend on (`provided`), one object of each type."""
    app = FastAPI(title=f"Shequn {service}", version="1.0")
    app.state.auth = auth
    app.state.provided = {type(thing): thing for thing in [auth, *provides]}
    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document.complete(default_openapi(), schemas or {})
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(AuthError)
    async def _auth_error(_: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        if exc.errors()[0]["type"] == "json_invalid":
            return JSONResponse({"error": "body: not valid JSON", "field": "body"}, 400)
        return JSONResponse(
            {
                **invalid(exc.errors(), exc.body).body(),
                # What was sent is not echoed back (it may be large, or not text at all).
                "errors": [
                    {"loc": list(map(str, e["loc"])), "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors()
                ],
            },
            status_code=422,
        )

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    # Starlette's own (unknown route, wrong method, a body it cannot parse) answer in the same
    # shape as everything else: {"error", "field"?}.
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(KafkaError)
    @app.exception_handler(PyMongoError)
    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        # Sending the same request again is safe: events are deduped by id downstream.
        log.error("infrastructure error: %r", exc)
        return JSONResponse(
            {"error": "temporarily unavailable; send the request again (repeating it is safe)"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    # Outermost: it sees every answer, those of the other middleware included.
    app.add_middleware(_Measured)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """Connected to Kafka and MongoDB (503 naming what is not)."""
        checks = await readiness()
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", tags=["ops"])
    async def prometheus() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app


class _Measured:
    """Counts and times every request by route and status. Plain ASGI: Starlette's
    `BaseHTTPMiddleware` (`@app.middleware`) costs about a fifth of a short request's time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def answering(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, answering)
        finally:
            # The router names the route in the request's scope, the one it was given.
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
            metrics.HTTP_SECONDS.labels(scope["method"], route).observe(
                time.perf_counter() - started
            )


class _BodyTooLarge(Exception):
    pass


class _BodyLimit:
    """Refuses a request body over `limit` bytes with 413, whether it declares its length or
    streams it, before the app holds all of it in memory."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _BodyTooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = {"error": f"the request body is over {self.limit} bytes", "field": "body"}
        await JSONResponse(body, status_code=413)(scope, receive, send)


def provided(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency on the object of type `kind` that the service gave its app, for routes
    declared at module level: `Rulesets = Annotated[Rulesets, Depends(provided(Rulesets))]`.
    A coroutine, though it awaits nothing: FastAPI runs a plain function's dependency in a
    worker thread, which cost a short request a fifteenth of its time."""

    async def dependency(request: Request) -> T:
        thing: T = request.app.state.provided[kind]
        return thing

    return dependency


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates the request's API key and checks its role."""

    async def dependency(request: Request) -> Principal:
        auth: Authenticator = request.app.state.auth
        return await auth.authenticate(bearer(request.headers.get("authorization")), role)

    return dependency


def client_address(request: Request, trusted: Sequence[str]) -> str:
    """Who sent the request: the peer, or for a trusted proxy in front (the ingress) the last
    address in X-Forwarded-For that is not one of the trusted (those before it a client could
    have written). `trusted` holds addresses or networks (10.0.0.0/8: a cluster's pods)."""
    networks = _networks(tuple(trusted))
    peer = request.client.host if request.client else ""
    if not _within(peer, networks):
        return peer
    forwarded = [a.strip() for a in request.headers.get("x-forwarded-for", "").split(",")]
    return next((a for a in reversed(forwarded) if a and not _within(a, networks)), peer)


@functools.lru_cache(maxsize=8)
def _networks(
    trusted: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _within(
    address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        found = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(found in network for network in networks)


# A group or member id in a path: a part of natural keys, so it follows their rule (and a
# stranger's 8,000-character ids are refused before they reach a cache).
IdInPath = Annotated[str, Path(pattern=f"^{KEY_PART.pattern}$", description=KEY_PART_RULE)]

# A page of a list: how many, and after what (the `next` of the page before).
PageLimit = Annotated[int, Query(ge=1, le=500)]
PageAfter = Annotated[str | None, Query(max_length=200, description="the `next` of a page")]

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Owner = Annotated[Principal, Depends(require(Role.OWNER))]
