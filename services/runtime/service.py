"""Runs one service: `python -m services.<name>` calls `run(name, build)`.

The runner owns the lifecycle that all services share: connect to MongoDB and Kafka, create
indexes and topics, start HTTP, gRPC, the consumer loops and background tasks, then on SIGTERM
or SIGINT stop taking work, let each consumer finish and commit the batch in hand, and close.
A consumer or background task that dies takes the process down with a non-zero exit, so that
the supervisor (Kubernetes, the dev stack) restarts it and the uncommitted batch is read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import APIRouter

from services.runtime import logs, topology
from services.runtime.auth import Authenticator
from services.runtime.bus import Producer, ensure_topics
from services.runtime.collector import spare_the_collector
from services.runtime.consumer import ConsumerLoop, ConsumerSpec
from services.runtime.http import create_app
from services.runtime.rpc import GrpcServer, GrpcService
from services.runtime.settings import Settings
from services.runtime.store import Indexes, Store, client

log = logging.getLogger(__name__)

Background = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class Runtime:
    """What a service's code is given: settings and connected clients."""

    settings: Settings
    store: Store
    producer: Producer
    auth: Authenticator


@dataclass(frozen=True)
class Database:
    """Collections of the service's with their indexes, in a store that may be `Runtime.store`
    or one on a server of its own: the runner creates the indexes, sweeps what expires there,
    and closes each store once."""

    store: Store
    indexes: Sequence[Indexes]


@dataclass
class ServiceParts:
    """What a service contributes: its routes, gRPC services, consumers and background tasks."""

    indexes: Sequence[Indexes] = ()
    databases: Sequence[Database] = ()
    routers: Sequence[APIRouter] = ()
    provides: Sequence[object] = ()  # what the routes depend on (runtime.http.provided)
    schemas: Mapping[str, Any] = field(default_factory=dict)
    grpc: Sequence[GrpcService] = ()
    consumers: Sequence[ConsumerSpec[Any]] = ()
    background: Sequence[Background] = field(default_factory=list)
    on_stop: Sequence[Callable[[], Awaitable[None]]] = ()  # after consumers and servers stop


def periodic(what: str, every: float, job: Callable[[], Awaitable[object]]) -> Background:
    """A background task that runs `job` at start and every `every` seconds until stopped. A
    failed run (the database is away) is logged; the next one catches up."""

    async def repeat(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await job()
            except Exception:
                log.warning("%s failed", what, exc_info=True)
            await _stopped_within(stop, every)

    return repeat


def restart_on_renewal(
    paths: Sequence[str], every: float = 60.0, spread: float = 300.0
) -> Background:
    """A background task that stops the service, the way SIGTERM does, once the files at `paths`
    change. Strimzi renews the Kafka certificates before they expire and Kubernetes updates the
    mounted files, but the Kafka clients read them once, at start: Kubernetes starts the service
    again with the new ones. After a random delay, so that its replicas do not all go at once."""

    async def watch(stop: asyncio.Event) -> None:
        seen = _fingerprint(paths)
        while not await _stopped_within(stop, every):
            if _fingerprint(paths) == seen:
                continue
            delay = random.uniform(0, spread)
            log.warning("Kafka TLS files renewed; restarting in %.0f s to use them", delay)
            if not await _stopped_within(stop, delay):
                stop.set()
            return

    return watch


def _fingerprint(paths: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with contextlib.suppress(OSError):  # mid-swap: the next look sees the new files
            digest.update(Path(path).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, or less if a stop is requested; whether it was."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


def _sweeper(store: Store, indexes: Sequence[Indexes], every: float) -> Background:
    """Deletes expired documents every `every` seconds, and once at start."""
    return periodic("expiry sweep", every, lambda: store.sweep_expired(indexes, datetime.now(UTC)))


async def finish(tasks: Sequence[asyncio.Task[Any]], within: float) -> list[BaseException | None]:
    """Wait for the tasks to end, up to `within` seconds (the pod's grace period is this and
    a margin); those still running are cancelled, so a consumer stuck in a batch gives it up
    uncommitted, to be read again, rather than be killed in the middle of closing. Returns
    each task's exception, or None."""
    _, late = await asyncio.wait(tasks, timeout=within) if tasks else (set(), set())
    for task in late:
        log.warning("%s did not finish in %.0f s; cancelled", task.get_name(), within)
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return [
        (None if t in late else asyncio.CancelledError()) if t.cancelled() else t.exception()
        for t in tasks
    ]


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The runner handles signals for the whole process.
        yield


async def serve(name: str, build: Callable[[Runtime], ServiceParts], settings: Settings) -> int:
    store = Store(settings.mongo_url, settings.database_name(name))
    producer = Producer(settings, topology.writable(name, settings))
    # API keys live in the identity database, on a server of its own or on this service's.
    shared = settings.identity_url == settings.mongo_url
    identity = store.client if shared else client(settings.identity_url)
    auth = Authenticator(identity, settings.mongo_db_prefix, settings.auth_cache_seconds)
    runtime = Runtime(settings, store, producer, auth)
    parts = build(runtime)
    topology.check_consumers(name, [(c.name, c.topics) for c in parts.consumers], settings)

    databases = [Database(store, parts.indexes), *parts.databases]
    stores = list({id(d.store): d.store for d in databases}.values())
    for database in databases:
        await database.store.create_indexes(database.indexes)
    await ensure_topics(settings, topology.used(name, settings))
    await producer.start()
    loops = [ConsumerLoop(spec, settings, producer) for spec in parts.consumers]
    dlq_topics = [loop.dead_letter.topic for loop in loops]
    if dlq_topics:
        await ensure_topics(settings, dlq_topics)

    async def readiness() -> dict[str, bool]:
        return {
            "mongodb": all([await s.reachable() for s in stores]),
            "kafka": await producer.reachable(),
            "consumers": all(loop.started for loop in loops),
        }

    app = create_app(
        service=name,
        auth=auth,
        readiness=readiness,
        routers=parts.routers,
        schemas=parts.schemas,
        max_body_bytes=settings.http_max_body_bytes,
        provides=[settings, store, producer, *parts.provides],
    )
    http = _Uvicorn(
        uvicorn.Config(
            app, host=settings.http_host, port=settings.http_port, log_config=None, access_log=False
        )
    )
    grpc_server = GrpcServer(settings.grpc_host, settings.grpc_port, parts.grpc)
    await grpc_server.start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    background = list(parts.background)
    if tls_files := settings.kafka_tls_files:
        background.append(restart_on_renewal(tls_files))
    for database in databases:
        if any(spec.expiring for spec in database.indexes):
            every = settings.expiry_sweep_seconds
            background.append(_sweeper(database.store, database.indexes, every))
    workers = [asyncio.create_task(c.run(stop), name=c.spec.name) for c in loops]
    workers += [asyncio.create_task(task(stop), name="background") for task in background]
    http_task = asyncio.create_task(http.serve(), name="http")
    spare_the_collector()
    log.info(
        "service started",
        extra={"fields": {"http": settings.http_port, "grpc": grpc_server.port}},
    )

    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait(
        [stopped, http_task, *workers], return_when=asyncio.FIRST_COMPLETED
    )
    exit_code = 0
    for task in done:
        if task is not stopped and (task.cancelled() or task.exception() is not None):
            log.error("%s stopped unexpectedly", task.get_name(), exc_info=task.exception())
            exit_code = 1
    stop.set()

    # Consumers finish and commit the batch in hand; then the servers and clients close.
    results = await finish(workers, settings.shutdown_seconds)
    for task, result in zip(workers, results, strict=True):
        if isinstance(result, BaseException) and task not in done:
            log.error("%s failed while stopping", task.get_name(), exc_info=result)
            exit_code = 1
    http.should_exit = True
    await grpc_server.stop()
    await asyncio.gather(http_task, return_exceptions=True)
    for close in parts.on_stop:
        await close()
    await producer.stop()
    for each in stores:
        await each.close()
    if not shared:
        await identity.close()
    log.info("service stopped")
    return exit_code


def run(name: str, build: Callable[[Runtime], ServiceParts]) -> None:
    settings = Settings(service=name)
    logs.configure(name, settings.log_level)
    sys.exit(asyncio.run(serve(name, build, settings)))
