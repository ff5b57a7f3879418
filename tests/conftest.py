"""Fixtures. Tests that need the system use one embedded stack per session, started with the
same `shequn dev` command a person runs (real broker, real database, five real service
processes), in a temporary state directory on free ports. Each test makes its own tenant, so
tests never see each other's data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.runtime.auth import Authenticator, Role
from services.runtime.store import client
from tests.fakes import AES_KEY, CORP_ID, TOKEN, FakeWecom, serve_fake

ROOT = Path(__file__).resolve().parent.parent
STACK_ENV = {
    # Small enough for a test to reach the rate limit with three requests of 500 events.
    "SHEQUN_INGEST_RATE_PER_TENANT": "100",
    "SHEQUN_INGEST_BURST_PER_TENANT": "1000",
    # A platform asking for a longer wait fails the action (tests ask for more, or less).
    "SHEQUN_DELIVERY_MAX_RETRY_AFTER_SECONDS": "60",
    # The tests' stand-ins for platforms and picture hosts listen on 127.0.0.1.
    "SHEQUN_OUTBOUND_ALLOW_PRIVATE_HOSTS": "true",
}


def stack_processes(state_dir: Path) -> dict[int, str]:
    """The processes whose environment marks them as part of the dev stack in `state_dir`, with
    their command lines."""
    marker = f"SHEQUN_DEV_STACK={state_dir}".encode()
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                found[int(proc.name)] = (
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                )
        except OSError:
            continue
    return found


@dataclass(frozen=True)
class Stack:
    info: dict[str, Any]
    state_dir: Path

    def http(self, service: str) -> str:
        return str(self.info["services"][service]["http"])

    def grpc(self, service: str) -> str:
        return str(self.info["services"][service]["grpc"])

    def memory_kib(self, service: str) -> int:
        """The resident memory of a service's process."""
        [pid] = [
            p for p, cmd in stack_processes(self.state_dir).items() if f"services.{service}" in cmd
        ]
        status = Path(f"/proc/{pid}/status").read_text()
        return int(
            next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]
        )

    @property
    def kafka(self) -> str:
        return str(self.info["kafka_bootstrap"])

    @property
    def mongo(self) -> str:
        """The database server holding the identity database (and ingestion's)."""
        return str(self.info["mongo_url"])

    def mongo_of(self, service: str) -> str:
        """The database server of one service's database."""
        return str(self.info["services"][service]["mongo_url"])


def start_dev_stack(
    state_dir: Path, env: dict[str, str], argv: list[str] | None = None, within: float = 120.0
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start `shequn dev` (or `argv`) in its own process group and wait for its dev file."""
    log = (state_dir.parent / f"{state_dir.name}.log").open("wb")
    process = subprocess.Popen(
        argv
        or [sys.executable, "-m", "services.devtools.cli", "dev", "--state-dir", str(state_dir)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    dev_file = state_dir / "dev.json"
    deadline = time.monotonic() + within
    while not dev_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"dev stack did not start; see {log.name}")
        time.sleep(0.2)
    return process, json.loads(dev_file.read_text())


def stop_dev_stack(process: subprocess.Popen[bytes], within: float = 60.0) -> int:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(within)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise


def start_service(
    name: str, env: dict[str, str], log: Path, http_port: int | None = None
) -> subprocess.Popen[bytes]:
    """One service as its own process (for tests that kill it), on free ports."""
    from services.devtools.stack import free_port

    ports = {
        "SHEQUN_HTTP_PORT": str(http_port or free_port()),
        "SHEQUN_GRPC_PORT": str(free_port()),
    }
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{name}"],
        cwd=ROOT,
        env={**os.environ, **env, **ports},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the stack says so: `-m "not stack"` runs the I/O-free ones alone."""
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = tmp_path_factory.mktemp("stack") / "state"
    env = {k: v for k, v in STACK_ENV.items()}
    for name in ("SHEQUN_KAFKA_BOOTSTRAP", "SHEQUN_MONGO_URL"):
        env[name] = os.environ.get(f"TEST_{name}", "")
    process, info = start_dev_stack(state_dir, env)
    try:
        yield Stack(info, state_dir)
    finally:
        stop_dev_stack(process)


@dataclass(frozen=True)
class Tenant:
    id: str
    owner: str
    admin: str
    operator: str
    viewer: str

    def headers(self, role: str = "owner") -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


async def create_tenant(stack: Stack) -> Tenant:
    tenant_id = f"t-{uuid.uuid4().hex[:10]}"
    mongo = client(stack.mongo)
    try:
        auth = Authenticator(mongo, "shequn_", 0)
        keys = {
            role.name.lower(): await auth.create_key(tenant_id, role, f"test {role.name}")
            for role in (Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.VIEWER)
        }
    finally:
        await mongo.close()
    return Tenant(tenant_id, keys["owner"], keys["admin"], keys["operator"], keys["viewer"])


@pytest.fixture
async def tenant(stack: Stack) -> Tenant:
    return await create_tenant(stack)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client_:
        yield client_


@pytest.fixture
async def wecom(stack: Stack, tenant: Tenant, http: httpx.AsyncClient) -> AsyncIterator[FakeWecom]:
    """The stand-in WeCom server API, configured as the tenant's WeCom."""
    async with serve_fake(FakeWecom()) as fake:
        response = await http.put(
            stack.http("ingestion") + "/v1/platforms/wecom",
            json={
                "corp_id": CORP_ID,
                "token": TOKEN,
                "encoding_aes_key": AES_KEY,
                "secret": "app-secret-1234",
                "api_base_url": fake.url,
            },
            headers=tenant.headers("owner"),
        )
        assert response.status_code == 200, response.text
        yield fake
