"""The one consume → process → commit loop of every service, in the manner of Sentry's Arroyo:

    poll ─► decode ─► handle (retry, then split) ─► dead-letter ─► commit

Offsets travel with the records, and a partition is committed only up to what its handler has
stored and produced (less what it still holds, `holds.py`), so delivery is at-least-once and
handlers are idempotent by event id. What each step does, and the limits that stop the consumer
instead of dead-lettering a topic, are in `strategies.py`. Backpressure is pause and resume of
partitions: a batch that takes long (an outage being waited out) keeps the consumer in its group
by polling with every partition paused, and a partition holding too many offsets is paused
until they drain. A stop request finishes the batch in hand and commits it, unless the batch is
waiting to be tried again: then it is left to be read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from services.runtime import metrics
from services.runtime.bus import Producer, connection
from services.runtime.holds import Holds
from services.runtime.settings import Settings
from services.runtime.strategies import (
    DeadLetter,
    DeadLetterLimit,
    Failed,
    Handle,
    InvalidMessage,
    Record,
    Stopping,
    TooManyDeadLetters,
)

__all__ = [
    "BatchHandler",
    "ConsumerLoop",
    "ConsumerSpec",
    "Holds",
    "InvalidMessage",
    "Pace",
    "Record",
    "Revoked",
    "TooManyDeadLetters",
]  # fmt: skip
log = logging.getLogger(__name__)
T = TypeVar("T")

BatchHandler = Callable[[Sequence[Record[T]]], Awaitable[None]]
Revoked = Callable[[Sequence[TopicPartition]], Awaitable[None] | None]


def _nothing(_: Sequence[TopicPartition]) -> None:
    return None


class Pace(Enum):
    """How soon a consumer wants its records: see Fetching."""

    REACTS = "reacts"  # on the path from a message to the platform's answer
    REPLIES = "replies"  # answers people wait for, less urgent (welcomes, the timeline)
    ROLLS_UP = "rolls up"  # counters and profiles of a day: nobody waits on a second


@dataclass(frozen=True)
class ConsumerSpec(Generic[T]):
    """What a service declares: a name (also its consumer group), topics, a decoder, a handler."""

    name: str
    topics: Sequence[str]
    decode: Callable[[bytes], T]
    handle: BatchHandler[T]
    describe: Callable[[T], dict[str, str]] = lambda _: {}  # log fields, e.g. event_id
    # Called when partitions are taken away (a rebalance, or the consumer stopping), before
    # their progress is committed: memory state kept for them (flood windows, cached
    # membership, actions waiting to be delivered) must go, or be finished, first.
    revoked: Revoked = _nothing
    # Offsets the handler finishes after its batch (delivery); None: every batch is finished
    # when its handler returns.
    holds: Holds | None = None
    pace: Pace = Pace.REPLIES


@dataclass(frozen=True)
class Fetching:
    """How a consumer reads. One on the reaction path fetches at once, in batches no larger
    than a warning should wait behind; the others wait for fuller fetches and take larger
    batches, which cost the broker, their databases and them less per event when they have
    fallen behind (measured on the dev stack: 500 → 2,000 took analytics' catch-up from about
    1,020 to 1,200 events/s). Rollups wait longest: each batch writes a group's day once, so
    a batch of two seconds writes it a quarter as often as one of half a second."""

    max_wait_ms: int
    max_records: int
    # How long a batch gathers records from several fetches (Arroyo's max_batch_time): the
    # broker answers a fetch as soon as it holds a few records, whatever the wait allowed.
    linger_ms: int = 0


def fetching(spec: ConsumerSpec[Any], settings: Settings) -> Fetching:
    if spec.pace is Pace.REACTS:
        return Fetching(settings.kafka_fetch_max_wait_ms, settings.batch_max_messages)
    if spec.pace is Pace.ROLLS_UP:
        return Fetching(
            settings.kafka_bulk_fetch_max_wait_ms,
            settings.rollup_batch_max_messages,
            settings.rollup_batch_linger_ms,
        )
    return Fetching(settings.kafka_bulk_fetch_max_wait_ms, settings.bulk_batch_max_messages)


def _decode(
    spec: ConsumerSpec[T], polled: Sequence[ConsumerRecord[bytes, bytes]]
) -> tuple[list[Record[T]], list[Failed]]:
    records: list[Record[T]] = []
    failed: list[Failed] = []
    for m in polled:
        try:
            value = spec.decode(m.value or b"")
        except Exception as exc:
            reason = exc if isinstance(exc, InvalidMessage) else InvalidMessage(repr(exc))
            failed.append(Failed(m, "invalid", f"decode: {reason}"))
            continue
        records.append(Record(m.topic, m.partition, m.offset, m.key, m.value or b"", value))
    return records, failed


class ConsumerLoop(Generic[T]):
    def __init__(self, spec: ConsumerSpec[T], settings: Settings, producer: Producer) -> None:
        self.spec = spec
        self.settings = settings
        self.group = settings.consumer_group(spec.name)
        self.limit = DeadLetterLimit(settings)
        self.fetching = fetching(spec, settings)
        self.handle = Handle(spec.name, spec.handle, settings, self.limit)
        self.dead_letter = DeadLetter(spec.name, settings.dlq_topic(spec.name), producer)
        self.consumer = AIOKafkaConsumer(
            **connection(settings),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.fetching.max_records,
            max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
            # Tansu holds a fetch for its whole max wait even when records are there: with
            # aiokafka's 500 ms, every hop of the reaction path cost 140 ms (p50); with 20, 8.
            fetch_max_wait_ms=self.fetching.max_wait_ms,
        )
        # Poll this often while a batch is in hand, so the group never thinks it is gone.
        self.keepalive = max(settings.kafka_max_poll_interval_ms / 3000, 0.2)
        self.started = False
        self.consumed: dict[TopicPartition, int] = {}  # next offset after what was handled
        self.committed: dict[TopicPartition, int] = {}
        self.held_back: set[TopicPartition] = set()  # paused for holding too many offsets
        # Bumped when a partition is taken away: a batch polled before does not count for it.
        self.generation: dict[TopicPartition, int] = {}
        self._lag_reported_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        self.consumer.subscribe(list(self.spec.topics), listener=_Rebalance(self))
        # Exported from the start, at 0: increase() sees the first one, and dashboards and alerts
        # find the series of a consumer that never failed.
        for reason in ("invalid", "failed"):
            metrics.DEAD_LETTERED.labels(self.spec.name, reason)
        metrics.at_zero(metrics.HANDLER_ERRORS, self.spec.name)
        metrics.at_zero(metrics.RETRIES, self.spec.name)
        await self.consumer.start()
        self.started = True
        log.info("consumer started", extra={"fields": {"group": self.group}})
        try:
            while not stop.is_set():
                batch, polled_in = await self._poll(stop)
                if batch:
                    await self._while_polling(self._process(batch, polled_in, stop))
                await self.commit_progress()
                self._backpressure()
                await self._report_lag()
        except Stopping:
            log.info("stopped while a batch waited to be tried again; it will be read again")
        finally:
            self.started = False
            assigned = list(self.consumer.assignment())
            with contextlib.suppress(Exception):  # the consumer may be closing for a failure
                await _call(self.spec.revoked, assigned)
                await self.commit_progress(assigned)
            await self.consumer.stop()
            log.info("consumer stopped", extra={"fields": {"group": self.group}})

    async def _while_polling(self, work: Awaitable[None]) -> None:
        """Do the batch's work; if it takes long, poll meanwhile with every partition paused,
        so the consumer stays in its group however long the batch takes (Kafka would otherwise
        count it gone after max_poll_interval_ms and give its partitions away)."""
        task = asyncio.ensure_future(work)
        paused: set[TopicPartition] = set()
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.keepalive)
                if done:
                    task.result()
                    return
                fresh = self.consumer.assignment() - self.consumer.paused()
                self.consumer.pause(*fresh)
                paused |= fresh
                # Nothing comes back from paused partitions; one assigned in between is put
                # back where it was, for the next poll.
                try:
                    for tp, messages in (await self.consumer.getmany(timeout_ms=0)).items():
                        self.consumer.seek(tp, messages[0].offset)
                except Exception as exc:  # the batch goes on; the next poll tries again
                    log.warning("polling during a long batch failed: %r", exc)
        finally:
            if not task.done():
                task.cancel()
            assigned = self.consumer.assignment()
            self.consumer.resume(*((paused - self.held_back) & assigned))

    async def _poll(
        self, stop: asyncio.Event
    ) -> tuple[list[ConsumerRecord[bytes, bytes]], dict[TopicPartition, int]]:
        """A batch, gathered for up to the linger once its first records are in, and the
        generation each of its partitions had when they were polled."""
        batch: list[ConsumerRecord[bytes, bytes]] = []
        polled_in: dict[TopicPartition, int] = {}
        until = time.monotonic() + self.fetching.linger_ms / 1000
        wait_ms = self.settings.batch_max_wait_ms
        while True:
            polled = await self.consumer.getmany(
                timeout_ms=wait_ms, max_records=self.fetching.max_records - len(batch)
            )
            for tp, messages in polled.items():
                polled_in.setdefault(tp, self.generation.get(tp, 0))
                batch.extend(messages)
            left_ms = (until - time.monotonic()) * 1000
            if not batch or left_ms <= 0 or len(batch) >= self.fetching.max_records:
                return batch, polled_in
            if stop.is_set():
                return batch, polled_in
            wait_ms = int(min(left_ms, self.settings.batch_max_wait_ms)) + 1

    async def _process(
        self,
        batch: list[ConsumerRecord[bytes, bytes]],
        polled_in: dict[TopicPartition, int],
        stop: asyncio.Event,
    ) -> None:
        for m in batch:
            metrics.CONSUMED.labels(self.spec.name, m.topic).inc()
        records, failed = _decode(self.spec, batch)
        if failed:
            self.limit.dead_lettered(len(failed), failed[-1].error)
        unhandled = await self.handle(records, stop)
        raw = {(m.topic, m.partition, m.offset): m for m in batch}
        failed += [
            Failed(
                raw[(r.topic, r.partition, r.offset)], reason, error, self.spec.describe(r.value)
            )
            for r, reason, error in unhandled
        ]
        await self.dead_letter(failed)
        for m in batch:
            tp = TopicPartition(m.topic, m.partition)
            if self.generation.get(tp, 0) == polled_in[tp]:  # not taken away meanwhile
                self.consumed[tp] = max(self.consumed.get(tp, 0), m.offset + 1)

    async def commit_progress(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commit each partition up to what is handled, less what the handler still holds."""
        holds = self.spec.holds
        offsets: dict[TopicPartition, int] = {}
        assigned = self.consumer.assignment()
        for tp in assigned if partitions is None else set(partitions) & assigned:
            done = self.consumed.get(tp)
            first_held = holds.first(tp) if holds else None
            if done is not None and first_held is not None:
                done = min(done, first_held)
            if done is not None and done > self.committed.get(tp, -1):
                offsets[tp] = done
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
            self.committed.update(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The partitions moved to another consumer during the batch; it reads them again,
            # and the handlers' idempotency makes that harmless.
            log.warning("commit refused after a rebalance: %s", exc)

    def _backpressure(self) -> None:
        holds = self.spec.holds
        if holds is None:
            return
        assigned = self.consumer.assignment()
        full = {tp for tp in assigned if holds.count(tp) >= holds.limit}
        drained = {tp for tp in self.held_back if holds.count(tp) <= holds.limit // 2}
        if full - self.held_back:
            log.warning(
                "pausing %d partitions: too many actions waiting", len(full - self.held_back)
            )
            self.consumer.pause(*(full - self.held_back))
        self.consumer.resume(*(drained & assigned))
        self.held_back = (self.held_back | full) - drained

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions moved to another consumer: nothing of theirs is ours any more."""
        partitions = list(partitions)
        if self.spec.holds:
            self.spec.holds.drop(partitions)
        for tp in partitions:
            self.committed.pop(tp, None)
            self.consumed.pop(tp, None)
            self.held_back.discard(tp)
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


async def _call(revoked: Revoked, partitions: Sequence[TopicPartition]) -> None:
    if partitions and inspect.isawaitable(done := revoked(partitions)):
        await done


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumerLoop[Any]) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # aiokafka calls this from its own task, maybe while a batch is in hand: that batch's
        # records of these partitions count for nothing from here on.
        revoked = list(revoked)
        loop = self.loop
        for tp in revoked:
            loop.generation[tp] = loop.generation.get(tp, 0) + 1
        if loop.spec.holds:
            loop.spec.holds.disown(revoked)
        try:
            await _call(loop.spec.revoked, revoked)
            await loop.commit_progress(revoked)  # what finished meanwhile, before they go
        finally:
            loop.forget(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = list(assigned)
        if self.loop.spec.holds:
            self.loop.spec.holds.assigned(assigned)
        log.info(
            "partitions assigned",
            extra={"fields": {"group": self.loop.group, "partitions": len(assigned)}},
        )
