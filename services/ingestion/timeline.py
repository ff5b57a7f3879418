"""What happened in a group, oldest first (API.md: GET /v1/groups/{group_id}/timeline): the
inbound events and the outbound actions with their delivery status.

Entries are keyed `"{tenant}:{group}:{time}:{e|a}:{id}"`, so writing an entry twice is a
duplicate key, and one group's timeline in time order is a range of that key. The range is read
on `position`, a copy of the key with an index of its own: NX-27017 answers a range of `_id` by
scanning the whole collection, a range of a single-field index by the index. Entries are deleted
after the retention period, counted from when they were recorded (backfilled history is kept as
long)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from services.gen.shequn.v1 import actions_pb2, common_pb2, events_pb2
from services.runtime.envelope import occurred_at
from services.runtime.http import IdInPath, Viewer, provided
from services.runtime.store import DELETE_AFTER, Document, Indexes, insert_new, kept_for

TIMELINE = "timeline"
_END = "\U0010ffff"
# Entries do not repeat what their key says (tenant, group): one is written for every event.
# Those of earlier versions do, which the answers leave out.
_HIDDEN = ("_id", "position", "tenant_id", "group_id", DELETE_AFTER)


INDEXES = [Indexes(TIMELINE, [IndexModel([("position", ASCENDING)])], expiring=True)]


def _prefix(tenant_id: str, group_id: str) -> str:
    return f"{tenant_id}:{group_id}:"


def entry_id(tenant_id: str, group_id: str, at: datetime, kind: str, item_id: str) -> str:
    # %Y%m%dT%H%M%S%f without strftime, which costs three times as much for every event (and
    # format specifiers twice as much).
    u = at.astimezone(UTC)
    when = "%04d%02d%02dT%02d%02d%02d%06d" % (  # noqa: UP031
        u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond
    )  # fmt: skip
    return f"{_prefix(tenant_id, group_id)}{when}:{kind}:{item_id}"


def _member(m: common_pb2.Member) -> dict[str, str] | None:
    return {"id": m.id, "name": m.name} if m.id else None


def event_entry(event: events_pb2.Event, delete_after: int) -> Document:
    kind = event.WhichOneof("payload") or ""
    payload = getattr(event, kind)
    member = None
    text = ""
    if kind == "message_posted":
        member, text = _member(payload.member), payload.message.text
    elif kind in ("member_joined", "order_placed", "coupon_redeemed"):
        member = _member(payload.member)
    elif kind == "member_left":
        member = _member(payload.member)
        text = "kicked" if payload.reason == events_pb2.LEAVE_REASON_KICKED else "quit"
    elif kind in ("group_created", "group_updated"):
        member, text = _member(payload.actor), payload.group.name
    elif kind == "group_dismissed":
        member = _member(payload.actor)
    elif kind == "member_welcomed":
        text = "、".join(m.name or m.id for m in payload.members)
    elif kind in ("reward_earned", "member_tier_changed"):
        member = _member(payload.member)
        text = payload.reason if kind == "reward_earned" else payload.tier
    elif kind == "member_checked_in":
        member, text = _member(payload.member), f"day {payload.streak} in a row"
    elif kind == "auto_replied":
        member, text = _member(payload.member), payload.rule_id
    elif kind == "red_packet_paid":
        member, text = _member(payload.member), f"{payload.kind} {payload.amount.minor}"
    at = occurred_at(event)
    key = entry_id(event.tenant_id, event.group_id, at, "e", event.event_id)
    return {
        "_id": key,
        "position": key,
        "kind": "event",
        "type": kind,
        "at": at,
        "member": member,
        "text": text,
        "event_id": event.event_id,
        "platform": common_pb2.Platform.Name(event.platform).removeprefix("PLATFORM_").lower(),
        DELETE_AFTER: delete_after,
    }


def action_text(action: actions_pb2.Action) -> tuple[str, dict[str, str] | None]:
    kind = action.WhichOneof("kind")
    if kind == "send_text":
        return action.send_text.text, None
    if kind == "send_link_card":
        return f"{action.send_link_card.title} {action.send_link_card.url}".strip(), None
    if kind == "kick_member":
        return action.kick_member.reason, {"id": action.kick_member.member_id, "name": ""}
    if kind == "rename_group":
        return action.rename_group.name, None
    if kind == "send_red_packet":
        return action.send_red_packet.greeting, None
    if kind == "dismiss_group":
        return action.dismiss_group.farewell, None
    if kind == "delete_message":
        return action.delete_message.message_id, None
    if kind == "sync_welcome_template":
        return action.sync_welcome_template.text, None
    if kind == "transfer_groups":
        moved = action.transfer_groups
        return f"{len(moved.group_ids)} groups to {moved.new_owner_id}", None
    if kind == "sync_join_way":
        return "、".join(action.sync_join_way.group_ids), None
    if kind == "remind_staff":
        return action.remind_staff.text, {"id": action.remind_staff.staff_id, "name": ""}
    return "", None


def action_entry_id(action: actions_pb2.Action) -> str:
    created = action.created_at.ToDatetime(UTC)
    return entry_id(action.tenant_id, action.group_id, created, "a", action.action_id)


def action_entry(action: actions_pb2.Action, delete_after: int) -> Document:
    """Without its `_id`, which the upsert's filter gives."""
    text, member = action_text(action)
    return {
        "position": action_entry_id(action),
        "kind": "action",
        "type": action.WhichOneof("kind"),
        "at": action.created_at.ToDatetime(UTC),
        "member": member,
        "text": text,
        "action_id": action.action_id,
        "source_service": action.source_service,
        "cause_event_id": action.cause_event_id,
        DELETE_AFTER: delete_after,
    }


async def record_events(
    collection: AsyncCollection[Document], events: Iterable[events_pb2.Event], kept: timedelta
) -> None:
    """One insert for a batch; entries already there (a redelivery) are left as they are."""
    delete_after = kept_for(kept)
    await insert_new(collection, [event_entry(e, delete_after) for e in events])


def _item(doc: Document) -> dict[str, Any]:
    item = {k: v for k, v in doc.items() if k not in _HIDDEN and v is not None}
    item["at"] = doc["at"].astimezone(UTC).isoformat().replace("+00:00", "Z")
    return item


@dataclass(frozen=True)
class Timeline:
    """Where the entries are kept: ingestion's database, or a server of its own."""

    entries: AsyncCollection[Document]


Kept = Annotated[Timeline, Depends(provided(Timeline))]
router = APIRouter(prefix="/v1", tags=["timeline"])


@router.get("/groups/{group_id}/timeline")
async def group_timeline(
    group_id: IdInPath,
    principal: Viewer,
    after: Annotated[str | None, Query(description="the `next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    *,
    timeline: Kept,
) -> dict[str, Any]:
    """A group's events and actions, oldest first, a page at a time."""
    prefix = _prefix(principal.tenant_id, group_id)
    if after is not None and (":" not in after or len(after) > 400):
        raise HTTPException(
            422, {"error": "after: not a cursor of this timeline", "field": "after"}
        )
    lower = {"$gt": prefix + after} if after else {"$gte": prefix}
    docs = (
        await timeline.entries.find({"position": {**lower, "$lt": prefix + _END}})
        .sort("position", ASCENDING)
        .limit(limit)
        .to_list(limit)
    )
    items = [_item(d) for d in docs]
    more = len(docs) == limit
    return {"items": items, "next": docs[-1]["_id"][len(prefix) :] if more else None}
