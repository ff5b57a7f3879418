"""Certificates renewed under a running service. Strimzi renews the Kafka user's certificate and
the cluster CA before they expire, and Kubernetes updates the mounted files; but the Kafka
clients read them once, at start. So the service stops itself when they change, the way SIGTERM
stops it (consumers finish and commit the batch in hand), and Kubernetes starts it again with
the new files: after a random delay, so that a service's replicas do not all go at once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def fingerprint(paths: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with contextlib.suppress(OSError):  # mid-swap: the next look sees the new files
            digest.update(Path(path).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def restart_on_renewal(
    paths: Sequence[str], every: float = 60.0, spread: float = 300.0
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """A background task that stops the service once the files at `paths` change."""

    async def watch(stop: asyncio.Event) -> None:
        seen = fingerprint(paths)
        while not await _stopped_within(stop, every):
            if fingerprint(paths) == seen:
                continue
            delay = random.uniform(0, spread)
            log.warning("Kafka TLS files renewed; restarting in %.0f s to use them", delay)
            if not await _stopped_within(stop, delay):
                stop.set()
            return

    return watch


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
