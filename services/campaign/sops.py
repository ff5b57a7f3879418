"""SOP schedules' I/O: a schedule document with its `next_slot` (indexed), and a slot document
per (schedule, slot) — `{tenant}:{schedule}:{slot}`, inserted by whoever fires it.

The sweep reads the schedules due and, for each slot from their `next_slot` to now (`sop.due`),
inserts the slot document: the replica whose insert lands fires it (the others' collide), so
each (schedule, group, slot) is sent once, with two replicas running or one started again. The
slot document holds the groups and texts before any action is produced, and `refire_at` until
they all are: a replica that died in between is finished by the next sweep, which produces the
same actions again (the same ids: delivery does not repeat them). Then `next_slot` moves on,
over the value read (an edit meanwhile wins). The outcomes come from the action results."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ASCENDING, DESCENDING, IndexModel

from services.campaign.groups import Groups, Reached
from services.campaign.members import Members
from services.campaign.messages import messages, outcome_writes, outcomes_of
from services.campaign.sop import Schedule, day_span, due, rendered, slots_after
from services.gen.shequn.v1 import actions_pb2
from services.runtime import metrics
from services.runtime.bus import Producer
from services.runtime.instants import stamp
from services.runtime.refusals import Invalid, NotFound
from services.runtime.settings import Settings
from services.runtime.store import Document, Indexes, Store, insert_new, page_after

SCHEDULES = "sop_schedules"
SLOTS = "sop_slots"
INDEXES = [
    Indexes(SCHEDULES, [IndexModel([("next_slot", ASCENDING)]), IndexModel([("tenant_id", 1)])]),
    Indexes(SLOTS, [IndexModel([("refire_at", ASCENDING)]), IndexModel([("schedule", ASCENDING)])]),
]
_ACTION = "campaign:sop:"
_LEASE = timedelta(seconds=30)
_SWEEP_MAX = 200
MENTIONS_MOST = 50  # members one message @mentions; more get another message


def _at(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1e6, UTC)


def _iso(micros: int) -> str:
    return _at(micros).isoformat().replace("+00:00", "Z")


class Schedules:
    def __init__(
        self,
        store: Store,
        producer: Producer,
        settings: Settings,
        directory: Groups,
        members: Members,
    ) -> None:
        self.schedules, self.slots, self.directory = store[SCHEDULES], store[SLOTS], directory
        self.members = members
        self.producer, self.topic = producer, settings.topic_actions
        self.grace = timedelta(minutes=settings.sop_grace_minutes)
        self.most, self.tz = settings.sop_max_groups, ZoneInfo(settings.default_timezone)

    def _next(self, schedule: Schedule, now: datetime) -> int:
        return stamp(next(slots_after(schedule, now, self.tz)))

    async def create(self, tenant_id: str, schedule: Schedule) -> dict[str, str]:
        if schedule.groups is not None and len(schedule.groups) > self.most:
            raise Invalid("groups", f"at most {self.most} groups, got {len(schedule.groups)}")
        schedule_id = f"s-{secrets.token_hex(6)}"
        doc = {
            "_id": f"{tenant_id}:{schedule_id}",
            "tenant_id": tenant_id,
            "schedule_id": schedule_id,
            **schedule.model_dump(mode="json"),
            "next_slot": self._next(schedule, datetime.now(UTC)),
        }
        await self.schedules.insert_one(doc)
        return {"schedule_id": schedule_id}

    async def get(self, tenant_id: str, schedule_id: str) -> dict[str, Any]:
        doc = await self.schedules.find_one({"_id": f"{tenant_id}:{schedule_id}"})
        if doc is None:
            raise NotFound("no schedule of this id", "schedule_id")
        fields = Schedule.model_validate(_fields(doc)).model_dump(mode="json")
        return {"schedule_id": schedule_id, **fields, "next_slot": _iso(doc["next_slot"])}

    async def page(self, tenant_id: str, limit: int, after: str | None) -> dict[str, Any]:
        """The tenant's schedules, by id, with their next slots."""
        after_id = f"{tenant_id}:{after}" if after else None
        docs, more = await page_after(self.schedules, {"tenant_id": tenant_id}, after_id, limit)
        page = [
            {"schedule_id": d["schedule_id"],
             **Schedule.model_validate(_fields(d)).model_dump(mode="json"),
             "next_slot": _iso(d["next_slot"])}
            for d in docs
        ]  # fmt: skip
        return {"schedules": page, "next": page[-1]["schedule_id"] if more else None}

    async def replace(self, tenant_id: str, schedule_id: str, schedule: Schedule) -> dict[str, Any]:
        """The schedule edited: its slots from now on are those of the new rule."""
        fields = {
            **schedule.model_dump(mode="json"),
            "next_slot": self._next(schedule, datetime.now(UTC)),
        }
        done = await self.schedules.update_one(
            {"_id": f"{tenant_id}:{schedule_id}"}, {"$set": fields}
        )
        if not done.matched_count:
            raise NotFound("no schedule of this id", "schedule_id")
        return await self.get(tenant_id, schedule_id)

    async def delete(self, tenant_id: str, schedule_id: str) -> None:
        done = await self.schedules.delete_one({"_id": f"{tenant_id}:{schedule_id}"})
        if not done.deleted_count:
            raise NotFound("no schedule of this id", "schedule_id")

    async def runs(self, tenant_id: str, schedule_id: str, limit: int) -> list[dict[str, Any]]:
        """The schedule's latest slots, newest first: each group's outcome, and what was
        skipped or missed."""
        await self.get(tenant_id, schedule_id)
        found = self.slots.find({"schedule": f"{tenant_id}:{schedule_id}"})
        docs = await found.sort("slot", DESCENDING).limit(limit).to_list()
        return [_run(d) for d in docs]

    async def sweep(self) -> None:
        """Fire what is due; finish what a replica left half fired."""
        now = datetime.now(UTC)
        left = self.slots.find({"refire_at": {"$lte": stamp(now)}}, limit=_SWEEP_MAX)
        for doc in await left.to_list():
            await self._produce(doc)
        due_now = self.schedules.find({"next_slot": {"$lte": stamp(now)}}, limit=_SWEEP_MAX)
        for doc in await due_now.to_list():
            await self._fire_due(doc, now)

    async def _fire_due(self, doc: Document, now: datetime) -> None:
        schedule = Schedule.model_validate(_fields(doc))
        tenant_id, schedule_id = doc["tenant_id"], doc["schedule_id"]
        found, following = due(schedule, _at(doc["next_slot"]), now, self.grace, self.tz)
        for slot, fate in found:
            slot_doc: Document = {
                "_id": f"{tenant_id}:{schedule_id}:{stamp(slot)}",
                "tenant_id": tenant_id,
                "schedule": doc["_id"],
                "schedule_id": schedule_id,
                "slot": stamp(slot),
                "groups": [],
                "skipped": [],
                "outcomes": {},
            }
            if fate == "missed":
                slot_doc |= {"state": "missed", "reason": "found after the grace window"}
            else:
                try:
                    reached, skipped = await self.directory.audience(tenant_id, schedule, self.most)
                except Invalid as exc:  # a tag grown past the limit
                    reached, skipped = [], [{"group_id": "", "reason": str(exc)}]
                groups = await self._messages(tenant_id, schedule, slot, reached)
                slot_doc |= {"state": "firing", "groups": groups, "skipped": skipped,
                             "refire_at": stamp(now + _LEASE)}  # fmt: skip
            if not await insert_new(self.slots, [slot_doc]) and fate == "fire":
                await self._produce(slot_doc)
            metrics.SOP_SLOTS.labels(fate).inc()
        await self.schedules.update_one(
            {"$and": [{"_id": doc["_id"]}, {"next_slot": doc["next_slot"]}]},
            {"$set": {"next_slot": stamp(following)}},
        )

    async def _messages(
        self, tenant_id: str, schedule: Schedule, slot: datetime, reached: list[Reached]
    ) -> list[dict[str, Any]]:
        """The slot's message to each group: every group's for a cron rule; for a step after
        a creation, the groups created on the step's day; after a join, to each group the
        members who joined on the step's day and are there still, @mentioned."""
        step = schedule.after
        if step is None:
            return [{**g, "text": rendered(schedule.text, g["name"])} for g in reached]
        zone = schedule.zone(self.tz)
        start, end = (stamp(t) for t in day_span(step.anchored(slot.astimezone(zone)), zone))
        if step.event == "group_created":
            docs = await self.directory.of(tenant_id, [g["group_id"] for g in reached])
            return [
                {**g, "text": rendered(schedule.text, g["name"])}
                for g in reached
                if start <= docs.get(g["group_id"], {}).get("created_at", -1) < end
            ]
        ids = {g["group_id"] for g in reached}
        newcomers: dict[str, list[Document]] = {}
        for m in await self.members.joined_between(tenant_id, start, end, ids):
            newcomers.setdefault(m["group_id"], []).append(m)
        out = []
        for g in reached:
            found = sorted(newcomers.get(g["group_id"], []), key=lambda m: m["member_id"])
            for i in range(0, len(found), MENTIONS_MOST):
                chunk = found[i : i + MENTIONS_MOST]
                names = " ".join(f"@{m.get('name') or m['member_id']}" for m in chunk)
                out.append({**g, "text": rendered(schedule.text, g["name"], names),
                            "mentions": [m["member_id"] for m in chunk]})  # fmt: skip
        return out

    async def _produce(self, slot: Document) -> None:
        await self.producer.send_many(messages(self.topic, _ACTION, slot))
        await self.slots.update_one(
            {"_id": slot["_id"]}, {"$set": {"state": "fired"}, "$unset": {"refire_at": ""}}
        )

    async def delivered(self, results: Sequence[actions_pb2.ActionResult]) -> None:
        """The outcome of each slot's messages, in one bulk write (the last result wins)."""
        if writes := outcome_writes(results, _ACTION):
            await self.slots.bulk_write(writes, ordered=True)


def _run(doc: Document) -> dict[str, Any]:
    return {
        "slot": _iso(doc["slot"]),
        "state": doc["state"],
        "reason": doc.get("reason", ""),
        **outcomes_of(doc),
        "skipped": doc["skipped"],
    }


def _fields(doc: Document) -> dict[str, Any]:
    """The schedule's fields (a schedule stored before relative steps has no `after`)."""
    return {k: doc[k] for k in Schedule.model_fields if k in doc}
