"""Ingestion as its own process, on its own topics, consumer groups and databases beside the
session's stack (same broker and database servers): for tests that kill it, or that need
settings the shared stack does not have."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from services.devtools.stack import free_port
from services.runtime.auth import Authenticator, Role
from services.runtime.bus import all_topics, ensure_topics
from services.runtime.settings import Settings
from services.runtime.store import client
from tests.clients import ready
from tests.conftest import Stack, start_service
from tests.waiting import eventually


def isolated_env(stack: Stack, prefix: str) -> dict[str, str]:
    """Settings that give a service process names of its own on the stack's servers."""
    return {
        "SHEQUN_KAFKA_BOOTSTRAP": stack.kafka,
        "SHEQUN_MONGO_URL": stack.mongo,
        "SHEQUN_MONGO_DB_PREFIX": f"{prefix}_",
        "SHEQUN_CONSUMER_GROUP_PREFIX": f"{prefix}.",
        "SHEQUN_DLQ_TOPIC_PREFIX": f"{prefix}.dlq.",
        **{
            f"SHEQUN_TOPIC_{t}": f"{prefix}.{t.lower()}"
            for t in ("EVENTS", "ACTIONS", "ACTION_RESULTS", "DECISIONS")
        },
    }


def settings_of(env: dict[str, str], **overrides: object) -> Settings:
    """The Settings an isolated process reads from `env`."""
    names = {k.removeprefix("SHEQUN_").lower(): v for k, v in env.items()}
    return Settings(**{**names, **overrides})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Isolated:
    url: str
    settings: Settings
    tenant_id: str
    key: str  # an owner key of tenant_id
    process: subprocess.Popen[bytes]
    env: dict[str, str]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@contextlib.asynccontextmanager
async def isolated_ingestion(
    stack: Stack,
    log: Path,
    extra: dict[str, str] | None = None,
    partitions: int = 2,
    again: Isolated | None = None,
) -> AsyncIterator[Isolated]:
    """A new ingestion process; `again`: one on the names of a process stopped before."""
    if again is None:
        prefix = f"iso{uuid.uuid4().hex[:8]}"
        env = {**isolated_env(stack, prefix), **(extra or {})}
        settings = settings_of(env, kafka_partitions=partitions)
        await ensure_topics(settings, all_topics(settings))
        mongo = client(stack.mongo)
        try:
            auth = Authenticator(mongo, f"{prefix}_", 0)
            key = await auth.create_key(prefix, Role.OWNER, "test")
        finally:
            await mongo.close()
    else:
        prefix, env, settings, key = again.tenant_id, again.env, again.settings, again.key
    port = free_port()
    process = start_service("ingestion", env, log, port)
    url = f"http://127.0.0.1:{port}"
    try:
        await eventually(lambda: ready(url), bool, within=60)
        yield Isolated(url, settings, prefix, key, process, env)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
