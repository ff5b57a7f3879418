"""Telegram Bot API `Update` objects → Shequn events. Plain code, no I/O.

Updates are parsed with python-telegram-bot's types (which read UTF-16 entity offsets right).
Joins and leaves get ids from chat, user and time, so the same join reported both as a
`new_chat_members` message and as a `chat_member` update is one event. Updates Shequn has no
use for (private chats, edits, the bot's own membership…) are acknowledged and counted, by
kind, and never fail the webhook."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telegram import Chat, ChatMember, Message, MessageEntity, Update, User

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.envelope import new_event

GROUP_CHATS = {Chat.GROUP, Chat.SUPERGROUP}
_MEMBER_STATUSES = {
    ChatMember.MEMBER,
    ChatMember.ADMINISTRATOR,
    ChatMember.OWNER,
    ChatMember.RESTRICTED,
}
_ROLES = {
    ChatMember.OWNER: common_pb2.GROUP_ROLE_OWNER,
    ChatMember.ADMINISTRATOR: common_pb2.GROUP_ROLE_ADMIN,
}


def update_kind(data: dict[str, Any]) -> str:
    """The kind of an update: the name of its one optional field (message, chat_member…)."""
    return next((k for k in data if k != "update_id"), "empty")


def _member(user: User | None, role: int = common_pb2.GROUP_ROLE_MEMBER) -> common_pb2.Member:
    if user is None:
        return common_pb2.Member()
    return common_pb2.Member(id=str(user.id), name=user.full_name, role=role)  # type: ignore[arg-type]


def _envelope(
    event_id: str, chat_id: int, at: datetime, tenant_id: str, received_at: datetime
) -> events_pb2.Event:
    return new_event(
        event_id, tenant_id, str(chat_id), common_pb2.PLATFORM_TELEGRAM, at, received_at
    )


def _membership_id(chat_id: int, change: str, user_id: int, at: datetime) -> str:
    return f"tg:{chat_id}:{change}:{user_id}:{int(at.timestamp())}"


def _message_events(
    message: Message, tenant_id: str, received_at: datetime
) -> list[events_pb2.Event]:
    chat_id, at = message.chat.id, message.date

    def envelope(event_id: str) -> events_pb2.Event:
        return _envelope(event_id, chat_id, at, tenant_id, received_at)

    events = []
    for user in message.new_chat_members or ():
        joined = envelope(_membership_id(chat_id, "joined", user.id, at))
        joined.member_joined.member.CopyFrom(_member(user))
        inviter = message.from_user
        if inviter is not None and inviter.id != user.id:
            joined.member_joined.inviter.CopyFrom(_member(inviter))
            joined.member_joined.scene = events_pb2.JOIN_SCENE_INVITE
        else:
            joined.member_joined.scene = events_pb2.JOIN_SCENE_QR  # joined through a link
        events.append(joined)
    if message.left_chat_member is not None:
        user = message.left_chat_member
        left = envelope(_membership_id(chat_id, "left", user.id, at))
        left.member_left.member.CopyFrom(_member(user))
        by = message.from_user
        kicked = by is not None and by.id != user.id
        left.member_left.reason = (
            events_pb2.LEAVE_REASON_KICKED if kicked else events_pb2.LEAVE_REASON_QUIT
        )
        if kicked:
            left.member_left.actor.CopyFrom(_member(by))
        events.append(left)
    if message.new_chat_title:
        renamed = envelope(f"tg:{chat_id}:{message.message_id}")
        renamed.group_updated.group.name = message.new_chat_title
        renamed.group_updated.changes.append(events_pb2.GROUP_CHANGE_NAME)
        renamed.group_updated.actor.CopyFrom(_member(message.from_user))
        events.append(renamed)
    if message.group_chat_created or message.supergroup_chat_created:
        created = envelope(f"tg:{chat_id}:{message.message_id}")
        created.group_created.group.name = message.chat.title or ""
        created.group_created.actor.CopyFrom(_member(message.from_user))
        events.append(created)
    text = message.text or message.caption
    if text is not None or message.photo or message.document:
        posted = envelope(f"tg:{chat_id}:{message.message_id}")
        posted.message_posted.member.CopyFrom(_member(message.from_user))
        posted.message_posted.message.CopyFrom(_chat_message(message))
        events.append(posted)
    return events


def _chat_message(message: Message) -> events_pb2.ChatMessage:
    entities = message.parse_entities() if message.text else message.parse_caption_entities()
    mentions: list[str] = []
    urls: list[str] = []
    for entity, fragment in entities.items():
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None:
            mentions.append(str(entity.user.id))
        elif entity.type == MessageEntity.MENTION:
            mentions.append(fragment)  # "@username": Telegram gives no id for these
        elif entity.type == MessageEntity.URL:
            urls.append(fragment)
        elif entity.type == MessageEntity.TEXT_LINK and entity.url:
            urls.append(entity.url)
    if message.photo:
        kind, media = events_pb2.MESSAGE_KIND_IMAGE, message.photo[-1].file_id
    elif message.document:
        kind, media = events_pb2.MESSAGE_KIND_FILE, message.document.file_id
    else:
        kind, media = (events_pb2.MESSAGE_KIND_LINK if urls else events_pb2.MESSAGE_KIND_TEXT), ""
    return events_pb2.ChatMessage(
        id=str(message.message_id),
        kind=kind,
        text=message.text or message.caption or "",
        mentions=mentions,
        urls=urls,
        media_url=media,
        title=message.document.file_name or "" if message.document else "",
    )


def _chat_member_events(
    update: Update, tenant_id: str, received_at: datetime
) -> list[events_pb2.Event]:
    change = update.chat_member
    assert change is not None
    before, after = change.old_chat_member.status, change.new_chat_member.status
    user, chat_id, at = change.new_chat_member.user, change.chat.id, change.date
    if before not in _MEMBER_STATUSES and after in _MEMBER_STATUSES:
        joined = _envelope(
            _membership_id(chat_id, "joined", user.id, at), chat_id, at, tenant_id, received_at
        )
        joined.member_joined.member.CopyFrom(
            _member(user, _ROLES.get(after, common_pb2.GROUP_ROLE_MEMBER))
        )
        by_link = change.invite_link is not None or change.from_user.id == user.id
        joined.member_joined.scene = (
            events_pb2.JOIN_SCENE_QR if by_link else events_pb2.JOIN_SCENE_INVITE
        )
        if not by_link:
            joined.member_joined.inviter.CopyFrom(_member(change.from_user))
        return [joined]
    if before in _MEMBER_STATUSES and after not in _MEMBER_STATUSES:
        left = _envelope(
            _membership_id(chat_id, "left", user.id, at), chat_id, at, tenant_id, received_at
        )
        left.member_left.member.CopyFrom(_member(user))
        if after == ChatMember.BANNED:
            left.member_left.reason = events_pb2.LEAVE_REASON_KICKED
            left.member_left.actor.CopyFrom(_member(change.from_user))
        else:
            left.member_left.reason = events_pb2.LEAVE_REASON_QUIT
        return [left]
    return []


def events_of(
    data: dict[str, Any], *, tenant_id: str, received_at: datetime
) -> tuple[str, list[events_pb2.Event]]:
    """(the update's kind, the events it means). No events: nothing Shequn records.
    Raises ValueError for an update that is not a valid Bot API Update."""
    kind = update_kind(data)
    try:
        update = Update.de_json(data, None)
    except Exception as exc:  # the library raises TypeError/KeyError/ValueError on bad input
        raise ValueError(f"not a Telegram Update: {type(exc).__name__}") from None
    if update is None:
        raise ValueError("not a Telegram Update")
    chat = update.effective_chat
    if chat is None or chat.type not in GROUP_CHATS:
        return kind, []
    if update.message is not None:
        return kind, _message_events(update.message, tenant_id, received_at)
    if update.chat_member is not None:
        return kind, _chat_member_events(update, tenant_id, received_at)
    return kind, []
