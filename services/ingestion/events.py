"""The generic event format of `POST /v1/events` (API.md) and its translation into the protobuf
`Event` that the other services consume. Plain code, no I/O: each item either becomes an Event
or is refused with the field and the reason (in the JSON format's own names); the intake then
admits it like an event of any source (`admission.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.ingestion.admission import EVENT_TYPES, MAX_MINOR, MEDIA_URL_RULE, Rejected
from services.runtime.instants import stamp
from services.runtime.wellformed import (
    KEY_PART_RULE,
    MAX_ENTRIES,
    MAX_ID,
    MAX_SECONDS,
    MAX_STRING,
    MIN_SECONDS,
)

MAX_BATCH = 500
PLATFORMS = {
    "sim": common_pb2.PLATFORM_SIM,
    "wecom": common_pb2.PLATFORM_WECOM,
    "telegram": common_pb2.PLATFORM_TELEGRAM,
    "generic": common_pb2.PLATFORM_GENERIC,
}
ROLES = {
    "member": common_pb2.GROUP_ROLE_MEMBER,
    "admin": common_pb2.GROUP_ROLE_ADMIN,
    "owner": common_pb2.GROUP_ROLE_OWNER,
}
SCENES = {
    "invite": events_pb2.JOIN_SCENE_INVITE,
    "qr": events_pb2.JOIN_SCENE_QR,
    "livecode": events_pb2.JOIN_SCENE_LIVECODE,
}
MESSAGE_KINDS = {
    "text": events_pb2.MESSAGE_KIND_TEXT,
    "image": events_pb2.MESSAGE_KIND_IMAGE,
    "link": events_pb2.MESSAGE_KIND_LINK,
    "mini_program": events_pb2.MESSAGE_KIND_MINI_PROGRAM,
    "file": events_pb2.MESSAGE_KIND_FILE,
    "red_packet": events_pb2.MESSAGE_KIND_RED_PACKET,
}

# The models say the JSON's shape (which keys, of which types and values); what the values must
# be is the event contract's (`admission.admit`), checked on the Event they become, as for
# every source. The descriptions repeat its rules for the OpenAPI document.
Id = Annotated[str, Field(description=f"1 to {MAX_ID} characters")]
KeyPartRule = Annotated[str, Field(description=KEY_PART_RULE)]  # checked by the contract
Entries = Annotated[list[str], Field(description=f"at most {MAX_ENTRIES} entries")]


class _In(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class MemberIn(_In):
    id: KeyPartRule
    name: str = ""
    role: Literal["owner", "admin", "member"] = "member"
    tags: Entries = []


class MessageIn(_In):
    id: str = ""
    kind: Literal["text", "image", "link", "mini_program", "file", "red_packet"] = "text"
    text: str = Field("", description=f"at most {MAX_STRING:,} characters")
    mentions: Entries = []
    urls: Entries = []
    media_url: str = Field("", description=MEDIA_URL_RULE)
    app_id: str = ""
    title: str = ""


class GroupIn(_In):
    name: str | None = None
    owner_id: str | None = None
    notice: str | None = None
    # Series tags; on group_updated, the complete new set.
    tags: list[KeyPartRule] | None = Field(None, description=f"at most {MAX_ENTRIES} entries")


AMOUNT_RULE = f"0 to {MAX_MINOR // 100:,}, in the currency's units"
CURRENCY_RULE = "ISO 4217, such as CNY"


class OrderIn(_In):
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)
    id: Id
    amount: float = Field(description=AMOUNT_RULE)
    currency: str = Field("CNY", description=CURRENCY_RULE)
    attribution: str = ""


class CouponIn(_In):
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)
    id: Id
    value: float = Field(0, description=AMOUNT_RULE)
    currency: str = Field("CNY", description=CURRENCY_RULE)


class _Event(_In):
    event_id: Id
    group_id: KeyPartRule
    tenant_id: str | None = None
    platform: Literal["sim", "wecom", "telegram", "generic"] = "sim"
    occurred_at: str | None = None


class GroupCreatedIn(_Event):
    type: Literal["group_created"]
    group: GroupIn = GroupIn()
    actor: MemberIn | None = None


class GroupUpdatedIn(_Event):
    type: Literal["group_updated"]
    group: GroupIn
    actor: MemberIn | None = None


class GroupDismissedIn(_Event):
    type: Literal["group_dismissed"]
    actor: MemberIn | None = None


class MemberJoinedIn(_Event):
    type: Literal["member_joined"]
    member: MemberIn
    inviter: MemberIn | None = None
    scene: Literal["invite", "qr", "livecode"] = "invite"
    livecode: str = ""
    channel: str = ""
    join_token: str = ""
    invite_code: str = ""


class MemberLeftIn(_Event):
    type: Literal["member_left"]
    member: MemberIn
    reason: Literal["quit", "kicked"] = "quit"
    actor: MemberIn | None = None


class MessagePostedIn(_Event):
    type: Literal["message_posted"]
    member: MemberIn
    message: MessageIn


class OrderPlacedIn(_Event):
    type: Literal["order_placed"]
    member: MemberIn
    order: OrderIn


class CouponRedeemedIn(_Event):
    type: Literal["coupon_redeemed"]
    member: MemberIn
    coupon: CouponIn


class LivecodeScannedIn(_Event):
    type: Literal["livecode_scanned"]
    livecode: Id
    channel: str = ""
    scanner_id: str = ""
    join_token: str = ""


EventIn = Annotated[
    GroupCreatedIn
    | GroupUpdatedIn
    | GroupDismissedIn
    | MemberJoinedIn
    | MemberLeftIn
    | MessagePostedIn
    | OrderPlacedIn
    | CouponRedeemedIn
    | LivecodeScannedIn,
    Field(discriminator="type"),
]
_adapter: TypeAdapter[EventIn] = TypeAdapter(EventIn)


def json_schemas() -> dict[str, Any]:
    """The OpenAPI component schemas of the event format ("Event" and its parts)."""
    schema = _adapter.json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = schema.pop("$defs")
    components["Event"] = schema
    return components


def parse_item(item: Any) -> EventIn:
    """Validate one item of a request; raise Rejected naming the first bad field."""
    try:
        return _adapter.validate_python(item)
    except ValidationError as exc:
        raise Rejected(_describe(exc, item)) from None


def _describe(exc: ValidationError, item: Any) -> str:
    error = exc.errors(include_url=False)[0]
    if error["type"] == "union_tag_not_found":
        return "type: required; one of " + ", ".join(EVENT_TYPES)
    if error["type"] == "union_tag_invalid":
        return f"type: unknown event type {item.get('type')!r}; one of " + ", ".join(EVENT_TYPES)
    if error["type"] == "model_attributes_type" and not error["loc"]:
        return "event: must be a JSON object"
    path = ".".join(str(part) for part in error["loc"][1:]) or "event"
    reason = "required" if error["type"] == "missing" else error["msg"]
    return f"{path}: {reason}"


def event_id_of(item: Any) -> str:
    """The event id of an item as far as it can be read, for the per-item result."""
    value = item.get("event_id") if isinstance(item, dict) else None
    return value if isinstance(value, str) else ""


def _timestamp(at: datetime) -> Timestamp:
    # What `Timestamp.FromDatetime` gives, by integer arithmetic: that method costs more than
    # the rest of an event's translation.
    seconds, micros = divmod(stamp(at), 1_000_000)
    return Timestamp(seconds=seconds, nanos=micros * 1000)


def _parse_time(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(f"occurred_at: not an ISO-8601 timestamp: {value!r}") from None
    if at.tzinfo is None:
        raise Rejected("occurred_at: needs a UTC offset, e.g. 2026-11-22T08:00:00+08:00")
    try:
        seconds = at.astimezone(UTC).timestamp()
    except (OverflowError, ValueError):
        seconds = -1
    if not MIN_SECONDS <= seconds < MAX_SECONDS:
        raise Rejected("occurred_at: out of range (1970..2100)")
    return at


def _member(m: MemberIn) -> common_pb2.Member:
    return common_pb2.Member(id=m.id, name=m.name, role=ROLES[m.role], tags=m.tags)


def _money(amount: float, currency: str, field: str) -> events_pb2.Money:
    """Money in the minor unit; its bounds are the contract's, checked on the Event."""
    minor = round(amount * 100)
    if not -(2**63) <= minor < 2**63:  # what the Event can hold at all
        raise Rejected(f"{field}: {AMOUNT_RULE}")
    return events_pb2.Money(minor=minor, currency=currency.upper())


def _group(g: GroupIn) -> events_pb2.GroupInfo:
    return events_pb2.GroupInfo(
        name=g.name or "", owner_id=g.owner_id or "", notice=g.notice or "", tags=g.tags or []
    )


def to_event(item: EventIn, *, tenant_id: str, received_at: datetime) -> events_pb2.Event:
    """Translate a validated item into the Event envelope, for the key's tenant."""
    if item.tenant_id not in (None, "", tenant_id):
        raise Rejected("tenant_id: does not match the API key's tenant")
    occurred = _parse_time(item.occurred_at) if item.occurred_at else received_at
    event = events_pb2.Event(
        event_id=item.event_id,
        tenant_id=tenant_id,
        group_id=item.group_id,
        platform=PLATFORMS[item.platform],
        occurred_at=_timestamp(occurred),
        received_at=_timestamp(received_at),
    )
    match item:
        case GroupCreatedIn():
            event.group_created.group.CopyFrom(_group(item.group))
            if item.actor:
                event.group_created.actor.CopyFrom(_member(item.actor))
        case GroupUpdatedIn():
            changes = [
                change
                for change, value in (
                    (events_pb2.GROUP_CHANGE_NAME, item.group.name),
                    (events_pb2.GROUP_CHANGE_OWNER, item.group.owner_id),
                    (events_pb2.GROUP_CHANGE_NOTICE, item.group.notice),
                    (events_pb2.GROUP_CHANGE_TAGS, item.group.tags),
                )
                if value is not None
            ]
            if not changes:
                raise Rejected("group: name, owner_id, notice or tags is required")
            event.group_updated.group.CopyFrom(_group(item.group))
            event.group_updated.changes.extend(changes)
            if item.actor:
                event.group_updated.actor.CopyFrom(_member(item.actor))
        case GroupDismissedIn():
            event.group_dismissed.SetInParent()
            if item.actor:
                event.group_dismissed.actor.CopyFrom(_member(item.actor))
        case MemberJoinedIn():
            joined = event.member_joined
            joined.member.CopyFrom(_member(item.member))
            if item.inviter:
                joined.inviter.CopyFrom(_member(item.inviter))
            joined.scene = SCENES[item.scene]
            joined.livecode, joined.channel = item.livecode, item.channel
            joined.join_token, joined.invite_code = item.join_token, item.invite_code
        case MemberLeftIn():
            event.member_left.member.CopyFrom(_member(item.member))
            event.member_left.reason = (
                events_pb2.LEAVE_REASON_KICKED
                if item.reason == "kicked"
                else events_pb2.LEAVE_REASON_QUIT
            )
            if item.actor:
                event.member_left.actor.CopyFrom(_member(item.actor))
        case MessagePostedIn():
            m = item.message
            event.message_posted.member.CopyFrom(_member(item.member))
            event.message_posted.message.CopyFrom(
                events_pb2.ChatMessage(
                    id=m.id,
                    kind=MESSAGE_KINDS[m.kind],
                    text=m.text,
                    mentions=m.mentions,
                    urls=m.urls,
                    media_url=m.media_url,
                    app_id=m.app_id,
                    title=m.title,
                )
            )
        case OrderPlacedIn():
            event.order_placed.member.CopyFrom(_member(item.member))
            event.order_placed.order_id = item.order.id
            amount = _money(item.order.amount, item.order.currency, "order.amount")
            event.order_placed.amount.CopyFrom(amount)
            event.order_placed.attribution = item.order.attribution
        case CouponRedeemedIn():
            event.coupon_redeemed.member.CopyFrom(_member(item.member))
            event.coupon_redeemed.coupon_id = item.coupon.id
            value = _money(item.coupon.value, item.coupon.currency, "coupon.value")
            event.coupon_redeemed.value.CopyFrom(value)
        case LivecodeScannedIn():
            scanned = event.livecode_scanned
            scanned.livecode, scanned.channel = item.livecode, item.channel
            scanned.scanner_id, scanned.join_token = item.scanner_id, item.join_token
    return event
