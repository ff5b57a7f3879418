"""The steps of the consumer loop between decoding and committing, after Sentry's Arroyo: handle
a batch (retry, then split to isolate what fails alone) and dead-letter, under limits that stop
the consumer when a bad deploy would otherwise drain a topic into the dead-letter topic.

Only an `InvalidMessage` is dead-lettered without retries: it can never succeed. Any other
error is retried with exponential backoff; a batch that still fails is split in halves, and the
halves handled in order, until the record that fails alone is found and dead-lettered. An
infrastructure error (the database or broker unreachable, or refusing the service: a password
being rotated, an ACL or a role missing) is not the data's fault: it is waited out with growing
pauses, then stops the process, and never dead-letters anything. Every wait ends early on a
stop request (`Stopping`): the batch in hand is then left uncommitted, to be read again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aiokafka import ConsumerRecord
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)
from pymongo.errors import ConnectionFailure, OperationFailure

from services.runtime import metrics
from services.runtime.bus import Outgoing, Producer
from services.runtime.logs import log_context
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors that say the database or the broker is unreachable, or refuses the service (a password
# being rotated, an ACL or a role missing), not that a message is bad.
INFRASTRUCTURE_ERRORS = (
    ConnectionFailure,
    KafkaConnectionError,
    KafkaTimeoutError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    OSError,
)
_ACCESS_REFUSED = {13, 18}  # MongoDB's Unauthorized, AuthenticationFailed


def infrastructure(error: BaseException) -> bool:
    return isinstance(error, INFRASTRUCTURE_ERRORS) or (
        isinstance(error, OperationFailure) and error.code in _ACCESS_REFUSED
    )


_LONGEST_PAUSE = 30.0  # seconds between tries while waiting out an outage


class InvalidMessage(Exception):
    """Raised by a decoder or handler for a message that can never succeed: dead-letter it."""


class TooManyDeadLetters(RuntimeError):
    """Too many messages failed (in a row, or as a share of recent ones): stop rather than
    dead-letter a whole topic. The process exits and the supervisor restarts it."""


class Stopping(Exception):
    """A stop was requested while a batch waited for a retry: leave it uncommitted."""


@dataclass(frozen=True)
class Record(Generic[T]):
    """A decoded message and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes
    value: T


@dataclass(frozen=True)
class Failed:
    raw: ConsumerRecord[bytes, bytes]
    reason: str  # "invalid" or "failed"
    error: str
    fields: dict[str, str] = field(default_factory=dict)  # what the record was, for the log


class DeadLetterLimit:
    """Stops the consumer when more than `consecutive` records in a row were dead-lettered, or
    more than `ratio` of the records of the last `window` seconds, once that window has seen
    `least` of them (a few bad messages among few are the consecutive limit's concern)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.consecutive = settings.dlq_max_consecutive
        self.ratio = settings.dlq_max_ratio
        self.window = settings.dlq_ratio_window_seconds
        self.least = settings.dlq_ratio_min_messages
        self.clock = clock
        self.in_a_row = 0
        self._seen: deque[tuple[float, int, int]] = deque()  # (when, handled, dead-lettered)

    def handled(self, count: int) -> None:
        if count:
            self.in_a_row = 0
            self._note(count, 0)

    def dead_lettered(self, count: int, last_error: str) -> None:
        """Count records about to be dead-lettered; raises instead when that is too many."""
        self.in_a_row += count
        self._note(0, count)
        if self.in_a_row > self.consecutive:
            raise TooManyDeadLetters(
                f"{self.in_a_row} messages failed in a row (limit {self.consecutive}); "
                f"last: {last_error}"
            )
        handled = sum(h for _, h, _ in self._seen)
        failed = sum(f for _, _, f in self._seen)
        if handled + failed >= self.least and failed > self.ratio * (handled + failed):
            raise TooManyDeadLetters(
                f"{failed} of the last {handled + failed} messages failed in {self.window:.0f} s "
                f"(limit {self.ratio:.0%}); last: {last_error}"
            )

    def _note(self, handled: int, failed: int) -> None:
        now = self.clock()
        self._seen.append((now, handled, failed))
        while self._seen and self._seen[0][0] < now - self.window:
            self._seen.popleft()


def reason_of(error: Exception) -> str:
    return "invalid" if isinstance(error, InvalidMessage) else "failed"


class Handle(Generic[T]):
    """Run the handler on a batch; returns the records that fail alone, with reason and
    error, having counted them against the dead-letter limit (which may raise)."""

    def __init__(
        self,
        name: str,
        handle: Callable[[Sequence[Record[T]]], Awaitable[None]],
        settings: Settings,
        limit: DeadLetterLimit,
    ) -> None:
        self.name, self.handle, self.limit = name, handle, limit
        self.attempts = settings.retry_attempts
        self.backoff = settings.retry_backoff_ms / 1000
        self.outage_limit = settings.outage_retry_seconds

    async def __call__(
        self, records: list[Record[T]], stop: asyncio.Event
    ) -> list[tuple[Record[T], str, str]]:
        if not records:
            return []
        error = await self._with_retries(records, stop)
        if error is None:
            self.limit.handled(len(records))
            return []
        if len(records) == 1:
            self.limit.dead_lettered(1, repr(error))
            return [(records[0], reason_of(error), repr(error))]
        half = len(records) // 2
        log.warning(
            "batch failed; splitting it to find what fails alone",
            extra={"fields": {"consumer": self.name, "records": len(records)}},
        )
        return await self(records[:half], stop) + await self(records[half:], stop)

    async def _with_retries(
        self, records: list[Record[T]], stop: asyncio.Event
    ) -> Exception | None:
        attempt, outages, outage_since = 0, 0, 0.0
        while True:
            started = time.perf_counter()
            try:
                await self.handle(records)
            except InvalidMessage as exc:
                metrics.HANDLER_ERRORS.labels(self.name).inc()
                return exc  # it will never succeed: no retry, straight to isolating it
            except Exception as exc:
                metrics.HANDLER_ERRORS.labels(self.name).inc()
                if infrastructure(exc):
                    outage_since = outage_since or time.monotonic()
                    if time.monotonic() - outage_since > self.outage_limit:
                        raise
                    log.warning("infrastructure unavailable: %r; retrying", exc)
                    metrics.RETRIES.labels(self.name).inc()
                    await _pause(min(self.backoff * 2**outages + 0.1, _LONGEST_PAUSE), stop)
                    outages += 1
                    continue
                log.warning("handler failed: %r", exc, extra={"fields": {"consumer": self.name}})
                attempt += 1
                if attempt >= self.attempts:
                    return exc
                metrics.RETRIES.labels(self.name).inc()
                await _pause(self.backoff * 2 ** (attempt - 1), stop)
                continue
            metrics.HANDLER_SECONDS.labels(self.name).observe(time.perf_counter() - started)
            metrics.BATCH_SIZE.labels(self.name).observe(len(records))
            return None


async def _pause(seconds: float, stop: asyncio.Event) -> None:
    """Wait before trying again, or raise Stopping as soon as a stop is requested."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
    raise Stopping


class DeadLetter:
    """Produce failed messages to the dead-letter topic, with the error and origin in headers."""

    def __init__(self, consumer: str, topic: str, producer: Producer) -> None:
        self.consumer, self.topic, self.producer = consumer, topic, producer

    async def __call__(self, failed: list[Failed]) -> None:
        if not failed:
            return
        await self.producer.send_many(
            Outgoing(
                self.topic,
                f.raw.key or b"",
                f.raw.value or b"",
                [
                    ("dlq.error", f.error[:2000].encode()),
                    ("dlq.reason", f.reason.encode()),
                    ("dlq.consumer", self.consumer.encode()),
                    ("dlq.origin", f"{f.raw.topic}:{f.raw.partition}:{f.raw.offset}".encode()),
                ],
            )
            for f in failed
        )
        for f in failed:
            metrics.DEAD_LETTERED.labels(self.consumer, f.reason).inc()
            with log_context(**f.fields):
                log.error(
                    "dead-lettered a message: %s",
                    f.error,
                    extra={"fields": {"consumer": self.consumer, "offset": f.raw.offset}},
                )
