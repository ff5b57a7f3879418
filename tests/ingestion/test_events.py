"""The generic event format, without I/O: table-driven accept and reject cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.ingestion.admission import MAX_LINK_URL, Rejected, admit, receive
from services.ingestion.events import parse_item, to_event
from services.runtime.envelope import decode_event
from services.runtime.wellformed import MAX_MEDIA_URL

NOW = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
AHEAD = timedelta(minutes=10)
BASE = {"event_id": "e-1", "group_id": "g-1"}
DATA_URL = "data:image/png;base64,"
LINK = "https://media.example.com/p/"


def _event(item: dict[str, Any]) -> events_pb2.Event:
    """An item of `POST /v1/events` as the intake publishes it, or Rejected."""
    event = to_event(parse_item(item), tenant_id="t-1", received_at=NOW)
    admit(event, max_ahead=AHEAD)
    return event


def _checked(event: events_pb2.Event) -> None:
    """An event of gRPC's `Publish` as the intake admits it, or Rejected."""
    receive(event, tenant_id="t-1", received_at=NOW)
    admit(event, max_ahead=AHEAD)


ACCEPTED = [
    (
        {
            **BASE,
            "type": "message_posted",
            "member": {"id": "u-1", "role": "admin"},
            "message": {"text": "加我微信", "mentions": ["u-2"], "urls": ["http://x.cn"]},
        },
        lambda e: (
            e.message_posted.message.text == "加我微信"
            and e.message_posted.member.role == common_pb2.GROUP_ROLE_ADMIN
            and list(e.message_posted.message.urls) == ["http://x.cn"]
        ),
    ),
    (
        {
            **BASE,
            "type": "member_joined",
            "member": {"id": "u-1"},
            "scene": "livecode",
            "livecode": "lc-spring",
            "channel": "store-A",
            "inviter": {"id": "u-9"},
        },
        lambda e: (
            e.member_joined.scene == events_pb2.JOIN_SCENE_LIVECODE
            and e.member_joined.channel == "store-A"
            and e.member_joined.inviter.id == "u-9"
        ),
    ),
    (
        {**BASE, "type": "member_left", "member": {"id": "u-1"}, "reason": "kicked"},
        lambda e: e.member_left.reason == events_pb2.LEAVE_REASON_KICKED,
    ),
    (
        {**BASE, "type": "group_updated", "group": {"name": "福利2群"}, "actor": {"id": "u-5"}},
        lambda e: (
            list(e.group_updated.changes) == [events_pb2.GROUP_CHANGE_NAME]
            and e.group_updated.actor.id == "u-5"
        ),
    ),
    (
        {**BASE, "type": "group_updated", "group": {"tags": ["春季系列", "vip"]}},
        lambda e: (
            list(e.group_updated.changes) == [events_pb2.GROUP_CHANGE_TAGS]
            and list(e.group_updated.group.tags) == ["春季系列", "vip"]
        ),
    ),
    (
        {**BASE, "type": "group_updated", "group": {"tags": []}},
        lambda e: list(e.group_updated.changes) == [events_pb2.GROUP_CHANGE_TAGS],
    ),
    (
        {**BASE, "type": "group_created", "group": {"name": "福利1群", "tags": ["春季系列"]}},
        lambda e: list(e.group_created.group.tags) == ["春季系列"],
    ),
    (
        {**BASE, "type": "group_dismissed"},
        lambda e: e.HasField("group_dismissed"),
    ),
    (
        {
            **BASE,
            "type": "order_placed",
            "member": {"id": "u-1"},
            "order": {"id": "o-1", "amount": 199.9, "currency": "cny"},
        },
        lambda e: e.order_placed.amount.minor == 19990 and e.order_placed.amount.currency == "CNY",
    ),
    (
        {**BASE, "type": "livecode_scanned", "livecode": "lc-1", "scanner_id": "u-3"},
        lambda e: e.livecode_scanned.livecode == "lc-1",
    ),
    (
        {
            **BASE,
            "type": "message_posted",
            "member": {"id": "u-1"},
            "message": {},
            "occurred_at": "2026-11-22T08:00:00+08:00",
            "platform": "wecom",
            "unknown": 1,
        },
        lambda e: e.occurred_at.ToDatetime(UTC) == NOW and e.platform == common_pb2.PLATFORM_WECOM,
    ),
    (  # a sender's clock a little ahead is tolerated
        {**BASE, "type": "group_dismissed", "occurred_at": "2026-11-22T00:09:59+00:00"},
        lambda e: e.occurred_at.ToDatetime(UTC) > NOW,
    ),
]


@pytest.mark.parametrize(("item", "check"), ACCEPTED)
def test_accepted(item: dict[str, Any], check: Any) -> None:
    event = _event(item)
    assert event.tenant_id == "t-1" and event.event_id == "e-1" and event.group_id == "g-1"
    assert check(event)


REJECTED = [
    ("not an object", "event: must be a JSON object"),
    ({"group_id": "g", "type": "group_dismissed"}, "event_id: required"),
    ({**BASE}, "type: required"),
    ({**BASE, "type": "nope"}, "type: unknown event type 'nope'"),
    ({**BASE, "type": "message_posted", "message": {}}, "member: required"),
    ({**BASE, "type": "message_posted", "member": {"id": 7}, "message": {}}, "member.id: "),
    (
        {**BASE, "type": "message_posted", "member": {"id": "u"}, "message": {"mentions": [1]}},
        "message.mentions.0: ",
    ),
    (
        {**BASE, "type": "message_posted", "member": {"id": "u"}, "message": {"kind": "video"}},
        "message.kind: ",
    ),
    (
        {**BASE, "type": "group_dismissed", "occurred_at": "yesterday"},
        "occurred_at: not an ISO-8601",
    ),
    (
        {**BASE, "type": "group_dismissed", "occurred_at": "2026-11-22T08:00:00"},
        "occurred_at: needs a UTC offset",
    ),
    ({**BASE, "type": "group_updated", "group": {}}, "group: name, owner_id, notice or tags"),
    ({**BASE, "type": "group_updated", "group": {"tags": ["a b"]}}, "group_updated.group.tags: "),
    ({**BASE, "type": "group_created", "group": {"tags": "vip"}}, "group.tags: "),
    (
        {**BASE, "type": "order_placed", "member": {"id": "u"}, "order": {"id": "o", "amount": -1}},
        "order_placed.amount.minor: 0 to",
    ),
    (
        {
            **BASE,
            "type": "order_placed",
            "member": {"id": "u"},
            "order": {"id": "o", "amount": "9"},
        },
        "order.amount: ",
    ),
    ({**BASE, "type": "group_dismissed", "tenant_id": "t-2"}, "tenant_id: does not match"),
    ({**BASE, "event_id": "", "type": "group_dismissed"}, "event_id: "),
    ({**BASE, "group_id": "a:b", "type": "group_dismissed"}, "group_id: "),
    ({**BASE, "type": "member_left", "member": {"id": "u 1"}}, "member_left.member.id: "),
    (
        {**BASE, "type": "group_dismissed", "occurred_at": "9999-12-31T23:59:59-14:00"},
        "occurred_at: out of range",
    ),
    (
        {**BASE, "type": "group_dismissed", "occurred_at": "0001-01-01T00:00:00+14:00"},
        "occurred_at: out of range",
    ),
    (
        {
            **BASE,
            "type": "order_placed",
            "member": {"id": "u"},
            "order": {"id": "o", "amount": float("inf")},
        },
        "order.amount: ",
    ),
    (
        {
            **BASE,
            "type": "order_placed",
            "member": {"id": "u"},
            "order": {"id": "o", "amount": 1e300},
        },
        "order.amount: ",
    ),
    ({**BASE, "event_id": "x" * 201, "type": "group_dismissed"}, "event_id: "),
    (
        {**BASE, "type": "group_dismissed", "occurred_at": "2026-11-22T00:10:01+00:00"},
        "occurred_at: more than 600 s after the time it was received",
    ),
    (
        {**BASE, "type": "group_dismissed", "occurred_at": "2099-01-01T00:00:00+00:00"},
        "occurred_at: more than 600 s after",
    ),
    (
        {
            **BASE,
            "type": "message_posted",
            "member": {"id": "u"},
            "message": {"kind": "image", "media_url": LINK + "a" * MAX_LINK_URL},
        },
        "message_posted.message.media_url: too long",
    ),
    (
        {
            **BASE,
            "type": "message_posted",
            "member": {"id": "u"},
            "message": {"kind": "image", "media_url": DATA_URL + "A" * MAX_MEDIA_URL},
        },
        "message_posted.message.media_url: too long",
    ),
]


@pytest.mark.parametrize(("item", "error"), REJECTED)
def test_rejected(item: Any, error: str) -> None:
    with pytest.raises(Rejected) as refused:
        _event(item)
    assert str(refused.value).startswith(error)


def test_protobuf_events_get_the_same_rules() -> None:
    event = events_pb2.Event(event_id="e-1", group_id="g-1")
    with pytest.raises(Rejected, match=r"^payload: required"):
        _checked(event)
    event.message_posted.message.text = "hi"
    with pytest.raises(Rejected, match=r"^message_posted\.member\.id: required"):
        _checked(event)
    event.message_posted.member.id = "u-1"
    _checked(event)
    assert event.tenant_id == "t-1" and event.platform == common_pb2.PLATFORM_SIM
    assert event.occurred_at == event.received_at
    event.tenant_id = "t-2"
    with pytest.raises(Rejected, match=r"^tenant_id: does not match"):
        receive(event, tenant_id="t-1", received_at=NOW)


def _coupon(coupon_id: str, minor: int, currency: str) -> events_pb2.Event:
    event = events_pb2.Event(event_id="e-1", group_id="g-1")
    redeemed = event.coupon_redeemed
    redeemed.member.id, redeemed.coupon_id = "u-1", coupon_id
    redeemed.value.minor, redeemed.value.currency = minor, currency
    return event


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (_coupon("", 500, "CNY"), "coupon_redeemed.coupon_id: required"),
        (_coupon("c" * 201, 500, "CNY"), "coupon_redeemed.coupon_id: at most 200"),
        (_coupon("c-1", -1, "CNY"), "coupon_redeemed.value.minor: 0 to"),
        (_coupon("c-1", 10**12, "CNY"), "coupon_redeemed.value.minor: 0 to"),
        (_coupon("c-1", 500, "yuan"), "coupon_redeemed.value.currency: an ISO 4217"),
        (_coupon("c-1", 500, ""), "coupon_redeemed.value.currency: an ISO 4217"),
    ],
)
def test_one_contract_for_every_source(event: events_pb2.Event, error: str) -> None:
    """gRPC (and every webhook) gets the rules of the JSON format: a coupon needs its id, money
    its bounds and currency — written once, in the contract, checked on the Event."""
    with pytest.raises(Rejected) as refused:
        _checked(event)
    assert str(refused.value).startswith(error)
    json_item = {
        **BASE,
        "type": "coupon_redeemed",
        "member": {"id": "u-1"},
        "coupon": {"id": event.coupon_redeemed.coupon_id, "value": -1},
    }
    with pytest.raises(Rejected):
        _event(json_item)
    _checked(_coupon("c-1", 0, ""))  # no value given: no currency needed


def _tagged(tag: str) -> Any:
    def spoil(event: events_pb2.Event) -> None:
        event.group_updated.group.tags.append(tag)
        event.group_updated.changes.append(events_pb2.GROUP_CHANGE_TAGS)

    return spoil


@pytest.mark.parametrize(
    ("spoil", "error"),
    [
        (
            lambda e: setattr(e.message_posted.member, "role", 99),
            "message_posted.member.role: unknown",
        ),
        (lambda e: setattr(e, "platform", 42), "platform: unknown"),
        (
            lambda e: setattr(e.occurred_at, "seconds", 10**12),
            "occurred_at: timestamp out of range",
        ),
        (
            lambda e: setattr(e.message_posted.message, "text", "x" * 20_001),
            "message_posted.message.text",
        ),
        (lambda e: setattr(e, "group_id", "g:1"), "group_id: "),
        (
            lambda e: setattr(e.message_posted.message, "media_url", LINK + "a" * MAX_LINK_URL),
            "message_posted.message.media_url: too long",
        ),
        (
            lambda e: setattr(
                e.message_posted.message, "media_url", DATA_URL + "A" * MAX_MEDIA_URL
            ),
            "message_posted.message.media_url: too long",
        ),
        (lambda e: setattr(e.message_posted.member, "id", "u 1"), "message_posted.member.id: "),
        (_tagged("spring:vip"), "group_updated.group.tags: "),
        (lambda e: setattr(e.occurred_at, "seconds", 4_000_000_000), "occurred_at: more than"),
        (lambda e: setattr(e, "event_id", "e" * 201), "event_id: 1 to 200"),
    ],
)
def test_protobuf_events_that_would_break_a_consumer_are_refused(spoil: Any, error: str) -> None:
    event = events_pb2.Event(event_id="e-1", group_id="g-1")
    event.message_posted.member.id = "u-1"
    event.occurred_at.FromDatetime(NOW)
    spoil(event)
    with pytest.raises(Rejected) as refused:
        _checked(event)
    assert str(refused.value).startswith(error)


def _picture(url: str) -> dict[str, Any]:
    return {
        **BASE,
        "type": "message_posted",
        "member": {"id": "u-1"},
        "message": {"kind": "image", "media_url": url},
    }


def test_media_urls_up_to_their_cap_pass_ingestion_and_every_consumer() -> None:
    """A data: URL is capped at 512 KiB (in bytes, what travels), any other URL at 2,048
    characters; what ingestion lets through, the consumers' decoder takes too."""
    longest_link = LINK + "a" * (MAX_LINK_URL - len(LINK))
    largest_picture = DATA_URL + "A" * (MAX_MEDIA_URL - len(DATA_URL))
    for url in (longest_link, largest_picture):
        event = _event(_picture(url))
        assert decode_event(event.SerializeToString()).message_posted.message.media_url == url
        _checked(event)
        assert event.ByteSize() < 1024 * 1024, "fits in a Kafka message"
    multibyte = DATA_URL + "图" * ((MAX_MEDIA_URL - len(DATA_URL)) // 3 + 1)
    with pytest.raises(Rejected, match=r"^message_posted\.message\.media_url: too long"):
        _event(_picture(multibyte))


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2026-11-22T08:00:00.123456+08:00",
        "1970-01-01T00:00:00Z",
        "2099-06-30T23:59:59.999999-11:00",
    ],
)
def test_times_are_kept_to_the_microsecond(occurred_at: str) -> None:
    item = {**BASE, "type": "member_joined", "member": {"id": "u-1"}, "occurred_at": occurred_at}
    event = to_event(parse_item(item), tenant_id="t-1", received_at=NOW)
    assert event.occurred_at.ToDatetime(UTC) == datetime.fromisoformat(occurred_at)
    assert event.received_at.ToDatetime(UTC) == NOW


def test_an_event_may_be_ahead_of_its_receipt_by_exactly_the_allowance() -> None:
    at = NOW + AHEAD
    item = {**BASE, "type": "member_joined", "member": {"id": "u-1"}, "occurred_at": at.isoformat()}
    admit(to_event(parse_item(item), tenant_id="t-1", received_at=NOW), max_ahead=AHEAD)
    later = (at + timedelta(microseconds=1)).isoformat()
    with pytest.raises(Rejected, match="occurred_at: more than 600 s after"):
        admit(
            to_event(parse_item({**item, "occurred_at": later}), tenant_id="t-1", received_at=NOW),
            max_ahead=AHEAD,
        )
