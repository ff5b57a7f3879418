"""Reading the event envelope off the events topic, the same way in every service."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from google.protobuf.message import DecodeError
from pymongo.asynchronous.collection import AsyncCollection

from services.gen.shequn.v1 import events_pb2
from services.runtime.consumer import BatchHandler, ConsumerSpec, InvalidMessage, Record
from services.runtime.settings import Settings
from services.runtime.store import Document, LatestWins, write_latest
from services.runtime.wellformed import problem

Event = events_pb2.Event


def decode_event(raw: bytes) -> Event:
    try:
        event = Event.FromString(raw)
    except DecodeError as exc:
        raise InvalidMessage(f"not a shequn.v1.Event: {exc}") from None
    if not (event.event_id and event.tenant_id and event.group_id):
        raise InvalidMessage("event_id, tenant_id and group_id are required")
    if event.WhichOneof("payload") is None:
        raise InvalidMessage("the event has no payload")
    if found := problem(event):
        raise InvalidMessage(found)
    return event


def events_consumer(
    name: str, settings: Settings, handle: BatchHandler[Event]
) -> ConsumerSpec[Event]:
    """A consumer of shequn.events.v1 in consumer group `name`."""
    return ConsumerSpec(name, [settings.topic_events], decode_event, handle, _describe)


def _describe(event: Event) -> dict[str, str]:
    return {"event_id": event.event_id, "tenant_id": event.tenant_id}


def occurred_at(event: Event) -> datetime:
    return event.occurred_at.ToDatetime(UTC)


def projection(
    name: str,
    settings: Settings,
    collection: AsyncCollection[Document],
    changes: Callable[[Iterable[Event]], list[LatestWins]],
) -> ConsumerSpec[Event]:
    """A consumer that keeps a latest-wins projection of the events in one collection."""

    async def handle(records: Sequence[Record[Event]]) -> None:
        await write_latest(collection, changes(r.value for r in records))

    return events_consumer(name, settings, handle)
