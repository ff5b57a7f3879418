"""Telegram Update JSON in the Bot API's wire format → Shequn events, without I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.ingestion.telegram_updates import events_of

DATA = Path(__file__).parent.parent / "data" / "telegram"
NOW = datetime(2026, 11, 22, tzinfo=UTC)
CHAT = "-1001234567890"


def _events(name: str) -> tuple[str, list[events_pb2.Event]]:
    return events_of(json.loads((DATA / name).read_text()), tenant_id="t-1", received_at=NOW)


def test_text_with_entities() -> None:
    kind, [event] = _events("message_text_entities.json")
    posted = event.message_posted
    assert kind == "message" and event.group_id == CHAT
    assert event.platform == common_pb2.PLATFORM_TELEGRAM and event.tenant_id == "t-1"
    assert posted.member.id == "111111111" and posted.member.name == "Alice"
    assert posted.message.text == "@gateway_bot see https://example.com and ask Bob"
    assert list(posted.message.urls) == ["https://example.com"]
    assert list(posted.message.mentions) == ["@gateway_bot", "222222222"]
    assert posted.message.kind == events_pb2.MESSAGE_KIND_LINK
    assert event.occurred_at.seconds == 1717000000


@pytest.mark.parametrize(
    ("name", "check"),
    [
        (
            "message_photo.json",
            lambda e: (
                e.message_posted.message.kind == events_pb2.MESSAGE_KIND_IMAGE
                and e.message_posted.message.media_url.endswith("_large")
            ),
        ),
        (
            "message_document.json",
            lambda e: e.message_posted.message.kind == events_pb2.MESSAGE_KIND_FILE,
        ),
        (
            "new_chat_members.json",
            lambda e: (
                e.member_joined.member.id == "222222222"
                and e.member_joined.scene == events_pb2.JOIN_SCENE_INVITE
                and e.member_joined.inviter.id == "111111111"
            ),
        ),
        ("left_chat_member.json", lambda e: e.member_left.member.id == "222222222"),
        (
            "new_chat_title.json",
            lambda e: (
                list(e.group_updated.changes) == [events_pb2.GROUP_CHANGE_NAME]
                and e.group_updated.group.name != ""
            ),
        ),
        (
            "chat_member.json",
            lambda e: (
                e.member_left.reason == events_pb2.LEAVE_REASON_KICKED
                and e.member_left.actor.id == "111111111"
            ),
        ),
    ],
)
def test_each_kind(name: str, check: Any) -> None:
    _, [event] = _events(name)
    assert event.group_id == CHAT
    assert check(event)


def test_the_bots_own_membership_is_acknowledged_not_recorded() -> None:
    assert _events("my_chat_member.json") == ("my_chat_member", [])


def test_private_chats_and_edits_are_not_recorded() -> None:
    data = json.loads((DATA / "message_text_entities.json").read_text())
    data["message"]["chat"] = {"id": 111111111, "type": "private", "first_name": "Alice"}
    assert events_of(data, tenant_id="t", received_at=NOW) == ("message", [])
    edited = {"update_id": 2, "edited_message": data["message"]}
    assert events_of(edited, tenant_id="t", received_at=NOW) == ("edited_message", [])


def test_a_join_reported_twice_is_one_event_id() -> None:
    """new_chat_members and chat_member describe the same join: same chat, user and second."""
    _, [by_message] = _events("new_chat_members.json")
    update = {
        "update_id": 5,
        "chat_member": {
            "chat": {"id": int(CHAT), "type": "supergroup", "title": "g"},
            "from": {"id": 111111111, "is_bot": False, "first_name": "Alice"},
            "date": by_message.occurred_at.seconds,
            "old_chat_member": {
                "status": "left",
                "user": {"id": 222222222, "is_bot": False, "first_name": "Bob"},
            },
            "new_chat_member": {
                "status": "member",
                "user": {"id": 222222222, "is_bot": False, "first_name": "Bob"},
            },
        },
    }
    _, [by_update] = events_of(update, tenant_id="t-1", received_at=NOW)
    assert by_update.event_id == by_message.event_id


def test_not_an_update() -> None:
    with pytest.raises(ValueError, match="not a Telegram Update"):
        events_of({"update_id": "x", "message": {"chat": 5}}, tenant_id="t", received_at=NOW)
