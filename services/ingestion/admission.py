"""The event contract: the one check every event passes before it is published, whatever
brought it: the generic API (after its JSON is read into an Event), gRPC, the Telegram webhook,
WeCom callbacks and chat-archive records, and the events the sim platform sends back. What
passes has what its type requires (a member, an order id, a coupon id, a live code, money within
bounds) and can be consumed by every service: its ids can be parts of natural keys, it is
well-formed as each consumer's decoder requires (`wellformed.problem`), it fits in one Kafka
message, and its time is not in the future. Fields are named by their path in the Event
(`order_placed.amount.minor`). Plain code, no I/O."""

from __future__ import annotations

import re
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
# What each type of event must carry, beyond its event and group ids.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "member_joined": ("member.id",),
    "member_left": ("member.id",),
    "message_posted": ("member.id",),
    "order_placed": ("member.id", "order_id"),
    "coupon_redeemed": ("member.id", "coupon_id"),
    "livecode_scanned": ("livecode",),
}
_MONEY = {"order_placed": "amount", "coupon_redeemed": "value"}
MAX_MINOR = 100_000_000_000  # a billion in a currency's units, in its minor unit (分)
_CURRENCY = re.compile(r"[A-Z]{3}")


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


def _field(message: object, path: str) -> object:
    for name in path.split("."):
        message = getattr(message, name)
    return message


def _check_type_rules(event: events_pb2.Event) -> None:
    """What the event's type requires of it."""
    kind = event.WhichOneof("payload")
    if kind is None:
        raise Rejected("payload: required; one of " + ", ".join(EVENT_TYPES))
    payload = getattr(event, kind)
    for path in _REQUIRED.get(kind, ()):
        value = str(_field(payload, path))
        if not value:
            raise Rejected(f"{kind}.{path}: required")
        if len(value) > MAX_ID:
            raise Rejected(f"{kind}.{path}: at most {MAX_ID} characters")
    if kind == "group_updated" and not payload.changes:
        raise Rejected("group_updated.changes: at least one change is required")
    if kind in _MONEY:
        name = f"{kind}.{_MONEY[kind]}"
        money = getattr(payload, _MONEY[kind])
        if not 0 <= money.minor <= MAX_MINOR:
            raise Rejected(f"{name}.minor: 0 to {MAX_MINOR:,} (a billion, in minor units)")
        if (money.minor or money.currency) and not _CURRENCY.fullmatch(money.currency):
            raise Rejected(f"{name}.currency: an ISO 4217 code such as CNY")


def admit(event: events_pb2.Event, *, max_ahead: timedelta) -> None:
    """Raise Rejected, naming the field, for an event that breaks the contract; `max_ahead` is
    how far past its receipt an event's time may be (clocks differ a little, not by years: a
    date in 2099 would freeze every latest-wins projection of the group)."""
    if not 1 <= len(event.event_id) <= MAX_ID:
        raise Rejected(f"event_id: 1 to {MAX_ID} characters")
    _check_type_rules(event)
    for name, value in (("group_id", event.group_id), *_key_parts(event)):
        if not KEY_PART.fullmatch(value):
            raise Rejected(f"{name}: {KEY_PART_RULE}")
    if event.WhichOneof("payload") == "message_posted":
        check_media_url(event.message_posted.message.media_url, "message_posted.message.media_url")
    if found := problem(event):
        raise Rejected(found)
    ahead = event.occurred_at.ToNanoseconds() - event.received_at.ToNanoseconds()
    if ahead > max_ahead // timedelta(microseconds=1) * 1000:
        raise Rejected(
            f"occurred_at: more than {max_ahead.total_seconds():.0f} s after the time it was"
            " received; check the sender's clock"
        )


def receive(event: events_pb2.Event, *, tenant_id: str, received_at: datetime) -> None:
    """An Event that arrives already in protobuf form (gRPC) as the generic API would have made
    it: for the key's tenant, with its receipt (and its time, if it has none) filled in. `admit`
    follows in the intake, as for every source."""
    if event.tenant_id not in ("", tenant_id):
        raise Rejected("tenant_id: does not match the API key's tenant")
    event.tenant_id = tenant_id
    if event.platform == common_pb2.PLATFORM_UNSPECIFIED:
        event.platform = common_pb2.PLATFORM_SIM
    event.received_at.FromDatetime(received_at.astimezone(UTC))
    if not event.HasField("occurred_at"):
        event.occurred_at.CopyFrom(event.received_at)
