"""The simulated platform (`sim`): groups and members live in ingestion's database, kept from
the sim events that arrive like any platform's; actions change that state and, like a real
platform, send back the events they cause (a kick comes back as `member_left` with reason
`kicked`, a rename as `group_updated`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from pymongo import UpdateOne

from services.gen.shequn.v1 import actions_pb2, common_pb2, events_pb2
from services.ingestion.adapters import (
    DELIVERED,
    NO_JOIN_WAYS,
    ONLY_WECOM,
    Outcome,
    delivered,
    failed,
    unsupported,
)
from services.runtime.coalesce import Coalesced
from services.runtime.envelope import natural_id, new_event
from services.runtime.instants import stamp
from services.runtime.projections import (
    directory_changes,
    group_doc_id,
    member_doc_id,
    membership_changes,
)
from services.runtime.store import Document, LatestWins, Store

SIM_GROUPS = "sim_groups"
SIM_MEMBERS = "sim_members"
BOT = common_pb2.Member(id="shequn-bot", name="Shequn", role=common_pb2.GROUP_ROLE_ADMIN)
_BOT_MESSAGES_KEPT = 200
_DELETED_KEPT = 1000

Emit = Callable[[list[events_pb2.Event]], Awaitable[object]]


def sim_state_changes(
    events: Iterable[events_pb2.Event],
) -> tuple[list[LatestWins], list[LatestWins]]:
    """(group changes, member changes) from the events of sim groups."""
    sim = [e for e in events if e.platform == common_pb2.PLATFORM_SIM]
    return directory_changes(sim), membership_changes(sim)


def _said(action: actions_pb2.Action) -> str:
    kind = action.WhichOneof("kind")
    if kind == "send_text":
        return action.send_text.text
    if kind == "send_link_card":
        return f"[链接] {action.send_link_card.title} {action.send_link_card.url}".strip()
    return f"[红包] {action.send_red_packet.greeting or '恭喜发财，大吉大利'}"


class SimAdapter:
    def __init__(self, store: Store, emit: Emit) -> None:
        self.groups = store[SIM_GROUPS]
        self.members = store[SIM_MEMBERS]
        self.emit = emit
        # Every group delivers in a task of its own: their reads, writes and the events they
        # send back go together, one request each for all the groups at that step.
        self._group_reads: Coalesced[str, Document | None] = Coalesced(self._read_groups)
        self._group_writes: Coalesced[UpdateOne, None] = Coalesced(self._write_groups)
        self._sent_back: Coalesced[events_pb2.Event, None] = Coalesced(self._send_back)

    async def _read_groups(self, ids: list[str]) -> list[Document | None]:
        found = self.groups.find({"_id": {"$in": sorted(set(ids))}}, {"bot_messages": 0})
        docs = {d["_id"]: d async for d in found}
        return [docs.get(i) for i in ids]

    async def _write_groups(self, updates: list[UpdateOne]) -> list[None]:
        await self.groups.bulk_write(updates, ordered=True)
        return [None] * len(updates)

    async def _send_back(self, events: list[events_pb2.Event]) -> list[None]:
        await self.emit(events)
        return [None] * len(events)

    async def wait(self, action: actions_pb2.Action) -> float:
        return 0.0  # the sim platform has no limits

    async def deliver(self, action: actions_pb2.Action) -> Outcome:
        group_id = group_doc_id(action.tenant_id, action.group_id)
        group = await self._group_reads(group_id)
        if group is not None and group.get("status") == "dismissed":
            return failed("the group is dismissed")
        kind = action.WhichOneof("kind")
        if kind in ("send_text", "send_link_card", "send_red_packet"):
            message = {"action_id": action.action_id, "text": _said(action), "at": stamp(_now())}
            await self._group_writes(
                UpdateOne(
                    {"_id": group_id},
                    {
                        "$push": {
                            "bot_messages": {"$each": [message], "$slice": -_BOT_MESSAGES_KEPT}
                        },
                        "$setOnInsert": {
                            "tenant_id": action.tenant_id,
                            "group_id": action.group_id,
                        },
                    },
                    upsert=True,
                )
            )
            return delivered(action.action_id)  # the sim platform's id of a bot's message
        if kind == "delete_message":
            deleted = {"$each": [action.delete_message.message_id], "$slice": -_DELETED_KEPT}
            await self._group_writes(
                # `$push`, not `$addToSet`: NX-27017's does nothing to a group without the list.
                UpdateOne({"_id": group_id}, {"$push": {"deleted_messages": deleted}}, upsert=True)
            )
            return DELIVERED
        if kind == "kick_member":
            member_id = action.kick_member.member_id
            # Removed here and now, so that a second kick of the same member fails instead of
            # sending a second member_left; the event updates the rest of the state.
            member = await self.members.find_one_and_update(
                {
                    "_id": member_doc_id(action.tenant_id, action.group_id, member_id),
                    "in_group": True,
                },
                {"$set": {"in_group": False}},
            )
            if member is None:
                known = await self.members.find_one(
                    {"_id": member_doc_id(action.tenant_id, action.group_id, member_id)}
                )
                # Joins reach this state through the events topic, a moment after them: not
                # there yet, or there since the update above looked.
                if known is None or known.get("in_group"):
                    return failed(f"{member_id} is not (yet) a member of the group", transient=True)
                return failed(f"{member_id} is not a member of the group")
            left = self._event(action, "member_left")
            left.member_left.member.CopyFrom(
                common_pb2.Member(id=member_id, name=member.get("name", ""))
            )
            left.member_left.reason = events_pb2.LEAVE_REASON_KICKED
            left.member_left.actor.CopyFrom(BOT)
            await self._sent_back(left)
            return DELIVERED
        if kind == "rename_group":
            renamed = self._event(action, "group_updated")
            renamed.group_updated.group.name = action.rename_group.name
            renamed.group_updated.changes.append(events_pb2.GROUP_CHANGE_NAME)
            renamed.group_updated.actor.CopyFrom(BOT)
            await self._sent_back(renamed)
            return DELIVERED
        if kind == "dismiss_group":
            dismissed = self._event(action, "group_dismissed")
            dismissed.group_dismissed.actor.CopyFrom(BOT)
            await self._sent_back(dismissed)
            return DELIVERED
        if kind == "transfer_groups":
            # The sim platform lets the bot change any owner: each group, as a group_updated.
            transfer = action.transfer_groups
            for n, moved_id in enumerate(transfer.group_ids):
                moved = self._event(action, "group_updated", n)
                moved.group_id = moved_id
                moved.group_updated.group.owner_id = transfer.new_owner_id
                moved.group_updated.changes.append(events_pb2.GROUP_CHANGE_OWNER)
                moved.group_updated.actor.CopyFrom(BOT)
                await self._sent_back(moved)
            return Outcome("delivered", f"{len(transfer.group_ids)} groups transferred")
        if kind == "remind_staff":
            note = {"action_id": action.action_id, "to": action.remind_staff.staff_id,
                    "text": action.remind_staff.text, "at": stamp(_now())}  # fmt: skip
            await self._group_writes(UpdateOne(
                {"_id": group_id},
                {"$push": {"staff_notes": {"$each": [note], "$slice": -_BOT_MESSAGES_KEPT}}},
                upsert=True,
            ))  # fmt: skip
            return DELIVERED
        if kind == "sync_join_way":
            return unsupported(NO_JOIN_WAYS)
        if kind == "sync_welcome_template":
            return unsupported(ONLY_WECOM)
        return failed(f"unknown action {kind!r}")

    @staticmethod
    def _event(action: actions_pb2.Action, kind: str, n: int = 0) -> events_pb2.Event:
        """The (n-th) event the platform sends back; its id follows from the action's, so a
        repeated delivery sends the same event, which ingestion's dedupe absorbs."""
        now = _now()
        event_id = natural_id("sim", action.action_id, *([str(n)] if n else []))
        event = new_event(
            event_id, action.tenant_id, action.group_id, common_pb2.PLATFORM_SIM, now, now
        )
        getattr(event, kind).SetInParent()
        return event


def _now() -> datetime:
    return datetime.now(UTC)
