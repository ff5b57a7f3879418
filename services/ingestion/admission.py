"""The one check every event passes before it is published, whatever brought it: the generic
API, gRPC, the Telegram webhook, WeCom callbacks and chat-archive records, and the events the
sim platform sends back. What passes can be consumed by every service: its ids can be parts of
natural keys, it is well-formed as each consumer's decoder requires (`wellformed.problem`), it
fits in one Kafka message, and its time is not in the future. Plain code, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.wellformed import (
    KEY_PART,
    KEY_PART_RULE,
    MAX_ID,
    MAX_MEDIA_URL,
    problem,
)

MAX_LINK_URL = 2048
MEDIA_URL_RULE = (
    f"a data: URL of at most {MAX_MEDIA_URL // 1024} KiB, "
    f"or any other URL of at most {MAX_LINK_URL} characters"
)
EVENT_TYPES: tuple[str, ...] = tuple(
    f.name for f in events_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"].fields
)
_NEEDS_MEMBER = {
    "member_joined",
    "member_left",
    "message_posted",
    "order_placed",
    "coupon_redeemed",
}


class Rejected(ValueError):
    """An item that cannot be accepted; the message is `field: reason`."""


def check_media_url(url: str, name: str) -> None:
    """A picture inline (data:) may be large, a link may not; either way the event must fit in a
    Kafka message."""
    if url.startswith("data:"):
        too_long = len(url.encode()) > MAX_MEDIA_URL  # bytes: what travels
    else:
        too_long = len(url) > MAX_LINK_URL
    if too_long:
        raise Rejected(f"{name}: too long; {MEDIA_URL_RULE}")


def _key_parts(event: events_pb2.Event) -> list[tuple[str, str]]:
    """(field, value) of every id in the event that becomes part of a natural key."""
    kind = event.WhichOneof("payload") or ""
    payload = getattr(event, kind)
    found = [
        (f"{kind}.{role}.id", getattr(payload, role).id)
        for role in ("member", "inviter", "actor")
        if role in payload.DESCRIPTOR.fields_by_name and getattr(payload, role).id
    ]
    if "group" in payload.DESCRIPTOR.fields_by_name:
        found += [(f"{kind}.group.tags", tag) for tag in payload.group.tags]
    return found


def admit(event: events_pb2.Event, *, max_ahead: timedelta) -> None:
    """Raise Rejected, naming the field, for an event no consumer could take; `max_ahead` is
    how far past its receipt an event's time may be (clocks differ a little, not by years: a
    date in 2099 would freeze every latest-wins projection of the group)."""
    if not 1 <= len(event.event_id) <= MAX_ID:
        raise Rejected(f"event_id: 1 to {MAX_ID} characters")
    for name, value in (("group_id", event.group_id), *_key_parts(event)):
        if not KEY_PART.fullmatch(value):
            raise Rejected(f"{name}: {KEY_PART_RULE}")
    if event.WhichOneof("payload") == "message_posted":
        check_media_url(event.message_posted.message.media_url, "message_posted.message.media_url")
    if found := problem(event):
        raise Rejected(found)
    received = event.received_at.ToDatetime(UTC)
    if event.occurred_at.ToDatetime(UTC) > received + max_ahead:
        raise Rejected(
            f"occurred_at: more than {max_ahead.total_seconds():.0f} s after the time it was"
            " received; check the sender's clock"
        )


def check_event(event: events_pb2.Event, *, tenant_id: str, received_at: datetime) -> None:
    """The rules of `POST /v1/events` for an Event that arrives already in protobuf form (gRPC):
    what the JSON format requires, then the tenant and receipt filled in. `admit` follows in
    the intake, as for every source."""
    if not event.event_id:
        raise Rejected("event_id: required")
    if not event.group_id:
        raise Rejected("group_id: required")
    if event.tenant_id not in ("", tenant_id):
        raise Rejected("tenant_id: does not match the API key's tenant")
    kind = event.WhichOneof("payload")
    if kind is None:
        raise Rejected("payload: required; one of " + ", ".join(EVENT_TYPES))
    payload = getattr(event, kind)
    if kind in _NEEDS_MEMBER and not payload.member.id:
        raise Rejected(f"{kind}.member.id: required")
    if kind == "order_placed" and not payload.order_id:
        raise Rejected("order_placed.order_id: required")
    if kind == "livecode_scanned" and not payload.livecode:
        raise Rejected("livecode_scanned.livecode: required")
    if kind == "group_updated" and not payload.changes:
        raise Rejected("group_updated.changes: at least one change is required")
    event.tenant_id = tenant_id
    if event.platform == common_pb2.PLATFORM_UNSPECIFIED:
        event.platform = common_pb2.PLATFORM_SIM
    event.received_at.FromDatetime(received_at.astimezone(UTC))
    if not event.HasField("occurred_at"):
        event.occurred_at.CopyFrom(event.received_at)
