"""The structural checks every message passes on its way in and out of a topic."""

from __future__ import annotations

import pytest

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.wellformed import MAX_ENTRIES, MAX_MEDIA_URL, MAX_STRING, problem


def _chat() -> events_pb2.Event:
    event = events_pb2.Event(event_id="e-1", tenant_id="t", group_id="g")
    event.occurred_at.GetCurrentTime()
    event.received_at.GetCurrentTime()
    event.message_posted.member.CopyFrom(common_pb2.Member(id="u-1", name="用户"))
    event.message_posted.message.text = "今天有什么优惠吗"
    event.message_posted.message.mentions.extend(["u-2", "u-3"])
    return event


def test_a_well_formed_event_has_no_problem() -> None:
    assert problem(_chat()) is None


def test_a_nested_enum_the_schema_does_not_know() -> None:
    event = _chat()
    event.message_posted.message.kind = 999  # type: ignore[assignment]
    assert problem(event) == "message_posted.message.kind: unknown value 999"


def test_a_repeated_enum_the_schema_does_not_know() -> None:
    event = events_pb2.Event(event_id="e-1", tenant_id="t", group_id="g")
    event.group_updated.changes.extend([events_pb2.GROUP_CHANGE_NAME, 77])  # type: ignore[list-item]
    assert problem(event) == "group_updated.changes: unknown value 77"


def test_a_timestamp_out_of_range() -> None:
    event = _chat()
    event.occurred_at.seconds = 5_000_000_000
    assert problem(event) == "occurred_at: timestamp out of range (1970..2100)"


@pytest.mark.parametrize(
    ("field", "limit"), [("text", MAX_STRING), ("title", MAX_STRING), ("media_url", MAX_MEDIA_URL)]
)
def test_strings_are_bounded(field: str, limit: int) -> None:
    event = _chat()
    setattr(event.message_posted.message, field, "x" * limit)
    assert problem(event) is None
    setattr(event.message_posted.message, field, "x" * (limit + 1))
    assert problem(event) == f"message_posted.message.{field}: at most {limit} characters"


def test_a_long_string_in_a_list() -> None:
    event = _chat()
    event.message_posted.message.urls.append("x" * (MAX_STRING + 1))
    assert problem(event) == f"message_posted.message.urls: at most {MAX_STRING} characters"


def test_lists_are_bounded() -> None:
    event = _chat()
    event.message_posted.message.mentions.extend(["u"] * (MAX_ENTRIES - 2))
    assert problem(event) is None
    event.message_posted.message.mentions.append("u")
    assert problem(event) == f"message_posted.message.mentions: at most {MAX_ENTRIES} entries"


def test_the_encoded_size_is_bounded() -> None:
    event = _chat()
    for _ in range(60):
        event.message_posted.message.urls.append("x" * MAX_STRING)
    assert problem(event) == "message: at most 921600 bytes once encoded"


def test_a_timestamp_checked_alone() -> None:
    event = _chat()
    assert problem(event.occurred_at, "occurred_at") is None
    event.occurred_at.seconds = -1
    assert problem(event.occurred_at, "occurred_at") == (
        "occurred_at: timestamp out of range (1970..2100)"
    )
