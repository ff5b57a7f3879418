"""Reading the event envelope off the events topic, the same way in every service."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from pymongo.asynchronous.collection import AsyncCollection

from services.gen.shequn.v1 import actions_pb2, common_pb2, decisions_pb2, events_pb2
from services.runtime.consumer import (
    BatchHandler,
    ConsumerSpec,
    InvalidMessage,
    Pace,
    Record,
    Revoked,
)
from services.runtime.settings import Settings
from services.runtime.store import Document, LatestWins, write_latest
from services.runtime.wellformed import MAX_ID, problem

Event = events_pb2.Event
M = TypeVar("M", bound=Message)


def decode_checked(
    kind: type[M], raw: bytes, required: tuple[str, ...], oneof: str | None = None
) -> M:
    """A topic's message, or InvalidMessage (dead-lettered) for one no handler could use:
    undecodable, without its ids or its payload, or not well-formed."""
    try:
        message = kind.FromString(raw)
    except DecodeError as exc:
        raise InvalidMessage(f"not a {kind.DESCRIPTOR.full_name}: {exc}") from None
    if not all(getattr(message, name) for name in required):
        raise InvalidMessage(", ".join(required) + " are required")
    if oneof and message.WhichOneof(oneof) is None:
        raise InvalidMessage(f"the message has no {oneof}")
    if found := problem(message):
        raise InvalidMessage(found)
    return message


def decode_event(raw: bytes) -> Event:
    return decode_checked(Event, raw, ("event_id", "tenant_id", "group_id"), "payload")


def decisions_consumer(
    name: str, settings: Settings, handle: BatchHandler[decisions_pb2.Decision]
) -> ConsumerSpec[decisions_pb2.Decision]:
    """A consumer of moderation's shequn.decisions.v1 in consumer group `name`."""
    return ConsumerSpec(
        name,
        [settings.topic_decisions],
        _decode_decision,
        handle,
        lambda d: {"decision_id": d.decision_id, "tenant_id": d.tenant_id},
    )


def results_consumer(
    name: str, settings: Settings, handle: BatchHandler[actions_pb2.ActionResult]
) -> ConsumerSpec[actions_pb2.ActionResult]:
    """A consumer of ingestion's shequn.action-results.v1 in consumer group `name`."""
    return ConsumerSpec(
        name,
        [settings.topic_action_results],
        lambda raw: decode_checked(actions_pb2.ActionResult, raw, ("action_id", "tenant_id")),
        handle,
        lambda r: {"action_id": r.action_id, "tenant_id": r.tenant_id},
    )


def _decode_decision(raw: bytes) -> decisions_pb2.Decision:
    # A decision about a member of the whole tenant (a blacklist entry added by hand, an
    # unban) has no group.
    return decode_checked(decisions_pb2.Decision, raw, ("decision_id", "tenant_id"))


def natural_id(*parts: str) -> str:
    """An id made from what identifies a thing (a platform's message, a callback's content), so
    that the platform's retries and redeliveries are duplicates. Ids are at most MAX_ID
    characters: a longer one becomes its first part and a digest of the whole."""
    joined = ":".join(parts)
    if len(joined) <= MAX_ID:
        return joined
    return f"{parts[0][:40]}:{hashlib.sha256(joined.encode()).hexdigest()}"


def new_event(
    event_id: str,
    tenant_id: str,
    group_id: str,
    platform: common_pb2.Platform.ValueType,
    occurred: datetime,
    received: datetime,
) -> Event:
    """An event envelope without its payload, as a platform's normalizer starts one."""
    event = Event(event_id=event_id, tenant_id=tenant_id, group_id=group_id, platform=platform)
    event.occurred_at.FromDatetime(occurred.astimezone(UTC))
    event.received_at.FromDatetime(received.astimezone(UTC))
    return event


def follow_up(event: Event, service: str, kind: str) -> Event:
    """An event of `service` about what `event` made happen (a check-in counted, an auto-reply
    given), at the time of `event`: its id is made from `event`'s, so doing it again is a
    duplicate."""
    at = occurred_at(event)
    return new_event(
        natural_id(service, event.event_id, kind),
        event.tenant_id, event.group_id, event.platform, at, at,
    )  # fmt: skip


def new_action(
    action_id: str,
    tenant_id: str,
    group_id: str,
    platform: common_pb2.Platform.ValueType,
    service: str,
    cause_event_id: str = "",
    at: datetime | None = None,
) -> actions_pb2.Action:
    """An action of `service` in a group, without its kind. Its id is made from what caused it,
    so that doing the same again makes the same action, which delivery does not repeat."""
    action = actions_pb2.Action(
        action_id=action_id,
        tenant_id=tenant_id,
        group_id=group_id,
        platform=platform,
        source_service=service,
        cause_event_id=cause_event_id,
    )
    action.created_at.FromDatetime(at or datetime.now(UTC))
    return action


def answer(event: Event, service: str, kind: str, at: datetime) -> actions_pb2.Action:
    """An action of `service` in the event's group, caused by the event (its id: the event's
    and `kind`)."""
    return new_action(
        f"{service}:{event.event_id}:{kind}",
        event.tenant_id,
        event.group_id,
        event.platform,
        service,
        event.event_id,
        at,
    )


def events_consumer(
    name: str,
    settings: Settings,
    handle: BatchHandler[Event],
    revoked: Revoked = lambda _: None,
    *,
    pace: Pace = Pace.REPLIES,
) -> ConsumerSpec[Event]:
    """A consumer of shequn.events.v1 in consumer group `name`."""
    return ConsumerSpec(
        name, [settings.topic_events], decode_event, handle, _describe, revoked, pace=pace
    )


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
