"""Accepting events from every source: admit, rate-limit, dedupe, publish, record — two
database round trips and one produce per request, however many events it carries.

Every event passes `admission.admit` here, whatever brought it, so nothing accepted can be
dead-lettered by a consumer for its shape; only admitted events count against the tenant's rate
limit (refused items cost nothing).

Kafka is the record of what was accepted; the `events` collection is the 7-day dedupe index,
keyed `_id = "{tenant}:{event_id}"`. A request first reads which of its events are known
(one `$in` query), publishes the others and waits for the broker's acknowledgement, then
inserts their keys; a duplicate-key error there means a concurrent request carried the same
event, which is then reported `duplicate`. An event is answered `accepted` only once it is on
Kafka, so a crash at any point loses nothing that was accepted: a client that got no answer
sends again, and the worst case is the same event published twice, which every consumer
absorbs once because handlers are idempotent by event id."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from services.gen.shequn.v1 import events_pb2
from services.ingestion.admission import Rejected, admit
from services.runtime import metrics
from services.runtime.bus import Outgoing, Producer, group_key
from services.runtime.logs import log_context
from services.runtime.ratelimit import RateLimited, TokenBuckets
from services.runtime.settings import Settings
from services.runtime.store import DELETE_AFTER, Document, Indexes, Store, insert_new, kept_for

log = logging.getLogger(__name__)
EVENTS = "events"


INDEXES = [Indexes(EVENTS, expiring=True)]


@dataclass(frozen=True)
class ItemResult:
    event_id: str
    status: str  # accepted | duplicate | rejected
    error: str = ""

    def as_json(self) -> dict[str, str]:
        # Spelled out: dataclasses.asdict costs 30 times as much, for every event.
        return {"event_id": self.event_id, "status": self.status, "error": self.error}


class Intake:
    def __init__(
        self, store: Store, producer: Producer, settings: Settings, limiter: TokenBuckets
    ) -> None:
        self.events = store[EVENTS]
        self.producer = producer
        self.topic = settings.topic_events
        self.limiter = limiter
        self.max_ahead = timedelta(seconds=settings.ingest_max_ahead_seconds)
        self.kept = timedelta(days=settings.ingest_dedupe_days)

    async def accept(
        self, events: list[events_pb2.Event], *, rate_limited: bool = True
    ) -> list[ItemResult]:
        """Publish the admissible events not seen before, in order; one result per event.
        Raises RateLimited, before anything is published, when the admissible events are more
        than their tenants may send now."""
        results: list[ItemResult | None] = []
        admitted: list[events_pb2.Event] = []
        for event in events:
            try:
                admit(event, max_ahead=self.max_ahead)
            except Rejected as exc:
                results.append(refused(event.tenant_id, event.event_id, str(exc)))
                continue
            results.append(None)
            admitted.append(event)
        if rate_limited:
            for tenant_id, count in Counter(e.tenant_id for e in admitted).items():
                if wait := self.limiter.take(tenant_id, count):
                    raise RateLimited("too many events for this tenant", wait)
        published = iter(await self._publish(admitted))
        return [r if r is not None else next(published) for r in results]

    async def _publish(self, events: list[events_pb2.Event]) -> list[ItemResult]:
        if not events:
            return []
        keys = [_key(e) for e in events]
        known = {d["_id"] async for d in self.events.find({"_id": {"$in": keys}}, {"_id": 1})}
        fresh: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key not in known and key not in fresh:
                fresh[key] = i
        new = [events[i] for i in fresh.values()]
        await self.producer.send_many(
            Outgoing(self.topic, group_key(e.tenant_id, e.group_id), e.SerializeToString())
            for e in new
        )
        raced = await self._record(new)
        accepted = set(fresh.values()) - {fresh[k] for k in raced}
        results = []
        for i, event in enumerate(events):
            status = "accepted" if i in accepted else "duplicate"
            metrics.EVENTS_INGESTED.labels(event.WhichOneof("payload") or "", status).inc()
            results.append(ItemResult(event.event_id, status))
        now = time.time()
        for tenant_id in {events[i].tenant_id for i in accepted}:
            metrics.TENANT_LAST_EVENT.labels(tenant_id).set(now)
        return results

    async def _record(self, events: list[events_pb2.Event]) -> set[str]:
        """Insert the dedupe keys; returns those another request recorded first."""
        delete_after = kept_for(self.kept)
        return await insert_new(self.events, [_dedupe_doc(e, delete_after) for e in events])


def refused(tenant_id: str, event_id: str, error: str) -> ItemResult:
    """The result of an item that failed validation, counted and logged."""
    metrics.EVENTS_INGESTED.labels("invalid", "rejected").inc()
    with log_context(tenant_id=tenant_id, event_id=event_id):
        log.info("event rejected: %s", error)
    return ItemResult(event_id, "rejected", error)


def _key(event: events_pb2.Event) -> str:
    return f"{event.tenant_id}:{event.event_id}"


def _dedupe_doc(event: events_pb2.Event, delete_after: int) -> Document:
    # Only that the event was seen: what it was is on Kafka and in the timeline, and every
    # field more is written 2,000 times a second (measured: 13% more keys a second without).
    return {"_id": _key(event), DELETE_AFTER: delete_after}
