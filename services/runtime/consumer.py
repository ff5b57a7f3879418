"""The one consume → process → commit loop of every service.

A batch goes through small steps, each doing one thing, in the manner of Sentry's Arroyo:

    poll ─► decode ─► handle (retry, then isolate) ─► dead-letter ─► commit

Offsets travel with the records, and a batch is committed only after its handler has stored
its effects and produced its outputs, so delivery is at-least-once and handlers are idempotent
by event id. A message that cannot be decoded, or that fails on its own after the retries, goes
to the consumer's dead-letter topic with the error in its headers and the partition moves on;
when many fail in a row the consumer stops instead, because that is a bad deploy or an outage,
not bad messages. A stop request finishes the batch in hand and commits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaTimeoutError,
    RequestTimedOutError,
)
from pymongo.errors import ConnectionFailure

from services.runtime import metrics
from services.runtime.bus import Outgoing, Producer
from services.runtime.logs import log_context
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


# Errors that say the database or the broker is unreachable, not that a message is bad.
INFRASTRUCTURE_ERRORS = (
    ConnectionFailure,
    KafkaConnectionError,
    KafkaTimeoutError,
    RequestTimedOutError,
    OSError,
)


class InvalidMessage(Exception):
    """Raised by a decoder or handler for a message that can never succeed: dead-letter it."""


class TooManyDeadLetters(RuntimeError):
    """Many messages in a row failed: stop rather than dead-letter a whole topic."""


@dataclass(frozen=True)
class Record(Generic[T]):
    """A decoded message and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes
    value: T


BatchHandler = Callable[[Sequence[Record[T]]], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec(Generic[T]):
    """What a service declares: a name (also its consumer group), topics, a decoder, a handler."""

    name: str
    topics: Sequence[str]
    decode: Callable[[bytes], T]
    handle: BatchHandler[T]
    describe: Callable[[T], dict[str, str]] = lambda _: {}  # log fields, e.g. event_id
    # Called when partitions are taken away: memory state kept for them (flood windows,
    # cached membership) may go stale while another consumer holds them.
    revoked: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Failed:
    raw: ConsumerRecord[bytes, bytes]
    reason: str  # "invalid" or "failed"
    error: str
    fields: dict[str, str] = field(default_factory=dict)  # what the record was, for the log


def _decode(
    spec: ConsumerSpec[T], polled: Sequence[ConsumerRecord[bytes, bytes]]
) -> tuple[list[Record[T]], list[Failed]]:
    records: list[Record[T]] = []
    failed: list[Failed] = []
    for m in polled:
        try:
            value = spec.decode(m.value or b"")
        except Exception as exc:
            failed.append(Failed(m, "invalid", f"decode: {exc!r}"))
            continue
        records.append(Record(m.topic, m.partition, m.offset, m.key, m.value or b"", value))
    return records, failed


class _Handle(Generic[T]):
    """Run the handler on the batch with bounded retries; if it keeps failing, run it on each
    record alone so that one poison message does not hold back the rest.

    An infrastructure error (the database or the broker unreachable) is not the data's fault:
    the batch is tried again, with backoff, until the outage limit, and then the consumer
    stops; such a failure never sends a message to the dead-letter topic."""

    def __init__(self, spec: ConsumerSpec[T], settings: Settings) -> None:
        self.spec = spec
        self.attempts = settings.retry_attempts
        self.backoff = settings.retry_backoff_ms / 1000
        self.outage_limit = settings.outage_retry_seconds

    async def __call__(self, records: list[Record[T]]) -> list[tuple[Record[T], str, str]]:
        """Returns the records that could not be handled, with reason and error."""
        if not records:
            return []
        error = await self._with_retries(records)
        if error is None:
            return []
        if len(records) == 1:
            return [(records[0], _reason(error), repr(error))]
        log.warning(
            "batch failed after retries; handling its records one by one",
            extra={"fields": {"consumer": self.spec.name, "records": len(records)}},
        )
        poison: list[tuple[Record[T], str, str]] = []
        for record in records:
            single = await self._with_retries([record])
            if single is not None:
                poison.append((record, _reason(single), repr(single)))
        return poison

    async def _with_retries(self, records: list[Record[T]]) -> Exception | None:
        name = self.spec.name
        attempt, outage_since = 0, 0.0
        while True:
            started = time.perf_counter()
            try:
                await self.spec.handle(records)
            except INFRASTRUCTURE_ERRORS as exc:
                metrics.HANDLER_ERRORS.labels(name).inc()
                outage_since = outage_since or time.monotonic()
                if time.monotonic() - outage_since > self.outage_limit:
                    raise
                log.warning("infrastructure unavailable: %r; retrying", exc)
                metrics.RETRIES.labels(name).inc()
                await asyncio.sleep(min(self.backoff * 2**attempt + 0.1, 10.0))
                continue
            except Exception as exc:
                metrics.HANDLER_ERRORS.labels(name).inc()
                if not isinstance(exc, InvalidMessage):
                    log.warning("handler failed: %r", exc, extra={"fields": {"consumer": name}})
                attempt += 1
                if attempt >= self.attempts or (
                    isinstance(exc, InvalidMessage) and len(records) == 1
                ):
                    return exc
                metrics.RETRIES.labels(name).inc()
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            metrics.HANDLER_SECONDS.labels(name).observe(time.perf_counter() - started)
            metrics.BATCH_SIZE.labels(name).observe(len(records))
            return None


def _reason(error: Exception) -> str:
    return "invalid" if isinstance(error, InvalidMessage) else "failed"


class _DeadLetter:
    """Produce failed messages to the dead-letter topic, with the error and origin in headers."""

    def __init__(self, consumer: str, topic: str, producer: Producer, limit: int) -> None:
        self.consumer, self.topic, self.producer, self.limit = consumer, topic, producer, limit
        self.in_a_row = 0

    async def __call__(self, failed: list[Failed], handled_ok: int) -> None:
        self.in_a_row = 0 if handled_ok else self.in_a_row
        if not failed:
            return
        self.in_a_row += len(failed)
        if self.in_a_row > self.limit:
            raise TooManyDeadLetters(
                f"{self.in_a_row} messages failed in a row (limit {self.limit}); last: "
                f"{failed[-1].error}"
            )
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


class ConsumerLoop(Generic[T]):
    def __init__(self, spec: ConsumerSpec[T], settings: Settings, producer: Producer) -> None:
        self.spec = spec
        self.settings = settings
        self.group = settings.consumer_group(spec.name)
        self.handle = _Handle(spec, settings)
        self.dead_letter = _DeadLetter(
            spec.name, settings.dlq_topic(spec.name), producer, settings.dlq_max_consecutive
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.batch_max_messages,
        )
        self.started = False
        self.committed: dict[TopicPartition, int] = {}
        self._lag_reported_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        self.consumer.subscribe(list(self.spec.topics), listener=_Rebalance(self))
        for reason in ("invalid", "failed"):  # exported from the start, so increase() sees the 1st
            metrics.DEAD_LETTERED.labels(self.spec.name, reason)
        await self.consumer.start()
        self.started = True
        log.info("consumer started", extra={"fields": {"group": self.group}})
        try:
            while not stop.is_set():
                polled = await self.consumer.getmany(
                    timeout_ms=self.settings.batch_max_wait_ms,
                    max_records=self.settings.batch_max_messages,
                )
                batch = [m for messages in polled.values() for m in messages]
                if batch:
                    await self._process(batch)
                await self._report_lag()
        finally:
            self.started = False
            await self.consumer.stop()
            log.info("consumer stopped", extra={"fields": {"group": self.group}})

    async def _process(self, batch: list[ConsumerRecord[bytes, bytes]]) -> None:
        for m in batch:
            metrics.CONSUMED.labels(self.spec.name, m.topic).inc()
        records, failed = _decode(self.spec, batch)
        unhandled = await self.handle(records)
        raw = {(m.topic, m.partition, m.offset): m for m in batch}
        failed += [
            Failed(
                raw[(r.topic, r.partition, r.offset)], reason, error, self.spec.describe(r.value)
            )
            for r, reason, error in unhandled
        ]
        await self.dead_letter(failed, handled_ok=len(records) - len(unhandled))
        await self._commit(batch)

    async def _commit(self, batch: list[ConsumerRecord[bytes, bytes]]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for m in batch:
            tp = TopicPartition(m.topic, m.partition)
            offsets[tp] = max(offsets.get(tp, 0), m.offset + 1)
        assigned = self.consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        try:
            await self.consumer.commit(offsets)
            self.committed.update(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The partitions moved to another consumer during the batch; it reads them again,
            # and the handlers' idempotency makes that harmless.
            log.warning("commit refused after a rebalance: %s", exc)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions moved to another consumer: their lag is no longer ours to report."""
        for tp in partitions:
            self.committed.pop(tp, None)
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(self.spec.name, tp.topic, str(tp.partition))

    async def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_reported_at < 1.0:
            return
        self._lag_reported_at = now
        for tp in list(self.consumer.assignment()):
            try:
                highwater: Any = self.consumer.highwater(tp)
                done = self.committed.get(tp)
                if done is None and highwater is not None:
                    done = await self.consumer.position(tp)
            except (IllegalStateError, AssertionError):
                continue  # revoked while we looked
            if highwater is not None and done is not None:
                metrics.CONSUMER_LAG.labels(self.spec.name, tp.topic, str(tp.partition)).set(
                    max(highwater - done, 0)
                )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumerLoop[Any]) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = list(revoked)
        if revoked:
            self.loop.spec.revoked()
        self.loop.forget(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info(
            "partitions assigned",
            extra={"fields": {"group": self.loop.group, "partitions": len(list(assigned))}},
        )
