"""WeCom (企业微信) customer-group callbacks and chat-archive records → Shequn events. Plain
code, no I/O: decryption happens at the edge, enrichment (names the callback does not carry)
is passed in.

`change_external_chat` (客户群变更): create; update with add_member (JoinScene 3 = QR code,
otherwise an invitation; a member who came through a join way with a state — a live code's —
joins through that live code, read off the group's details), del_member (QuitScene 1 =
removed by the owner or an admin),
change_name, change_owner, change_notice; dismiss. WeCom repeats a callback it got no timely
answer for, so event ids are made from the callback's own content: a repeat is a duplicate."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.envelope import natural_id, new_event
from services.runtime.wellformed import KEY_PART, KEY_PART_RULE, MAX_STRING

GROUP_CHANGE = "change_external_chat"
_CHANGES = {
    "change_name": events_pb2.GROUP_CHANGE_NAME,
    "change_owner": events_pb2.GROUP_CHANGE_OWNER,
    "change_notice": events_pb2.GROUP_CHANGE_NOTICE,
}
_ARCHIVE_KINDS = {
    "text": events_pb2.MESSAGE_KIND_TEXT,
    "image": events_pb2.MESSAGE_KIND_IMAGE,
    "link": events_pb2.MESSAGE_KIND_LINK,
    "weapp": events_pb2.MESSAGE_KIND_MINI_PROGRAM,
    "file": events_pb2.MESSAGE_KIND_FILE,
    "redpacket": events_pb2.MESSAGE_KIND_RED_PACKET,
    "external_redpacket": events_pb2.MESSAGE_KIND_RED_PACKET,
}


class Callback:
    """The fields of a decrypted callback that Shequn reads."""

    def __init__(self, xml: str) -> None:
        try:
            root = ElementTree.fromstring(xml)
        except ElementTree.ParseError as exc:
            raise ValueError(f"callback: not XML: {exc}") from None
        self.fields = {child.tag: (child.text or "").strip() for child in root}
        changed = root.find("MemChangeList")
        items = [] if changed is None else [(i.text or "").strip() for i in changed.iter("Item")]
        if changed is not None and not items and changed.text:  # older pushes: "a,b,c"
            items = [p.strip() for p in changed.text.split(",")]
        self.members = [m for m in items if m]

    def get(self, name: str) -> str:
        return self.fields.get(name, "")

    @property
    def kind(self) -> str:
        event = self.get("Event")
        return f"{self.get('MsgType')}:{event}" if event else self.get("MsgType") or "unknown"

    @property
    def chat_id(self) -> str:
        return self.get("ChatId")

    @property
    def needs_group_details(self) -> bool:
        """True when the event means a group value that the callback does not carry: a new
        group, a changed name, owner or notice, or members who scanned a QR code (a join way's
        state says which live code)."""
        detail = self.get("UpdateDetail")
        return self.get("Event") == GROUP_CHANGE and (
            self.get("ChangeType") == "create"
            or detail in _CHANGES
            or (detail == "add_member" and self.get("JoinScene") == "3")
        )


def _envelope(
    event_id: str, group_id: str, at: datetime, tenant_id: str, received_at: datetime
) -> events_pb2.Event:
    return new_event(event_id, tenant_id, group_id, common_pb2.PLATFORM_WECOM, at, received_at)


def group_change_events(
    callback: Callback,
    *,
    tenant_id: str,
    received_at: datetime,
    group: Mapping[str, Any] | None = None,
) -> list[events_pb2.Event]:
    """Events of a `change_external_chat` callback; `group` is what `groupchat/get` answered
    (name, owner, notice), when it could be asked."""
    if callback.get("Event") != GROUP_CHANGE or not callback.chat_id:
        return []
    chat, change, detail = (
        callback.chat_id,
        callback.get("ChangeType"),
        callback.get("UpdateDetail"),
    )
    created = callback.get("CreateTime")
    at = datetime.fromtimestamp(int(created), UTC) if created.isdigit() else received_at
    base = ("wecom", chat, created, change)
    info = events_pb2.GroupInfo(
        name=str((group or {}).get("name", "")),
        owner_id=str((group or {}).get("owner", "")),
        notice=str((group or {}).get("notice", "")),
    )

    def envelope(*suffix: str) -> events_pb2.Event:
        return _envelope(natural_id(*base, *suffix), chat, at, tenant_id, received_at)

    if change == "create":
        event = envelope("group")
        event.group_created.group.CopyFrom(info)
        return [event]
    if change == "dismiss":
        event = envelope("group")
        event.group_dismissed.SetInParent()
        return [event]
    if change != "update":
        return []
    if detail == "add_member":
        scene = (
            events_pb2.JOIN_SCENE_QR
            if callback.get("JoinScene") == "3"
            else events_pb2.JOIN_SCENE_INVITE
        )
        states = _join_states(group)
        events = []
        for member in callback.members:
            event = envelope("add_member", member)
            event.member_joined.member.CopyFrom(common_pb2.Member(id=member))
            event.member_joined.scene = scene
            if state := states.get(member):  # came through a live code's join way
                event.member_joined.scene = events_pb2.JOIN_SCENE_LIVECODE
                event.member_joined.livecode = state
            events.append(event)
        return events
    if detail == "del_member":
        kicked = callback.get("QuitScene") == "1"
        events = []
        for member in callback.members:
            event = envelope("del_member", member)
            event.member_left.member.CopyFrom(common_pb2.Member(id=member))
            event.member_left.reason = (
                events_pb2.LEAVE_REASON_KICKED if kicked else events_pb2.LEAVE_REASON_QUIT
            )
            events.append(event)
        return events
    if detail in _CHANGES:
        event = envelope(detail)
        event.group_updated.group.CopyFrom(info)
        event.group_updated.changes.append(_CHANGES[detail])
        return [event]
    return []


def _join_states(group: Mapping[str, Any] | None) -> dict[str, str]:
    """The join-way state of each member of the group's details who has one (groupchat/get:
    `member_list[].state`, for members who joined through a join way that set one)."""
    found: dict[str, str] = {}
    for m in (group or {}).get("member_list") or []:
        if isinstance(m, dict) and isinstance(m.get("userid"), str):
            state = m.get("state")
            if isinstance(state, str) and state and KEY_PART.fullmatch(state):
                found[m["userid"]] = state
    return found


def archive_events(
    records: list[Any], *, tenant_id: str, received_at: datetime
) -> tuple[list[tuple[int, events_pb2.Event]], list[str]]:
    """(events with the index of their record, errors) of chat-archive (会话存档) records:
    group messages become `message_posted`; recalls, switches and one-to-one chats are not
    group activity. The intake admits the events like any others. A text longer than an event
    carries is shortened, not refused: the archive is what was really said in WeCom, and the
    start of a long message is what the rules need."""
    events: list[tuple[int, events_pb2.Event]] = []
    errors: list[str] = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            errors.append(f"records.{i}: must be an object")
            continue
        msgid, sender, room = record.get("msgid"), record.get("from"), record.get("roomid")
        if record.get("action") != "send" or not room:
            continue
        if not (isinstance(msgid, str) and msgid and isinstance(sender, str) and sender):
            errors.append(f"records.{i}: msgid and from are required")
            continue
        bad = next((f for f, v in (("roomid", room), ("from", sender)) if not _id_ok(v)), None)
        if bad:
            errors.append(f"records.{i}.{bad}: {KEY_PART_RULE}")
            continue
        msgtime = record.get("msgtime")
        if not isinstance(msgtime, int) or not 0 < msgtime < 4_102_444_800_000:
            errors.append(f"records.{i}.msgtime: milliseconds since 1970 required")
            continue
        kind = str(record.get("msgtype", "text"))
        found = record.get(kind)
        body: dict[str, Any] = found if isinstance(found, dict) else {}
        message = events_pb2.ChatMessage(
            id=msgid,
            kind=_ARCHIVE_KINDS.get(kind, events_pb2.MESSAGE_KIND_TEXT),
            text=str(body.get("content") or body.get("title") or body.get("wish") or "")[
                :MAX_STRING
            ],
            urls=[str(body["link_url"])] if body.get("link_url") else [],
            app_id=str(body.get("username") or "") if kind == "weapp" else "",
            title=str(body.get("title") or ""),
        )
        event = _envelope(
            natural_id("wecom-archive", msgid),
            room,
            datetime.fromtimestamp(msgtime / 1000, UTC),
            tenant_id,
            received_at,
        )
        event.message_posted.member.CopyFrom(common_pb2.Member(id=sender))
        event.message_posted.message.CopyFrom(message)
        events.append((i, event))
    return events, errors


def _id_ok(value: object) -> bool:
    return isinstance(value, str) and KEY_PART.fullmatch(value) is not None
