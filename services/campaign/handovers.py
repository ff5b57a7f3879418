"""Handovers' I/O: one document per handover (`{tenant}:{handover}`, the id the client's or
made), holding every group's entry (by `field_key`), the batches sent (`batches.{n}`), a
`version` that every change is written over, and `due_at` (indexed) while a batch may go.

The sweep plans a batch (`handover.next_batch`), claims WeCom's room for it from the leaver's
day (a document per person and day, one conditional `$inc`), writes it over the version read,
produces its `transfer_groups` action (`campaign:handover:{doc}:{n}`) and marks it sent; a
batch written but not marked sent (the replica died) is produced again, under the same id,
which delivery does not repeat. Its result sets each group's entry (`handover.after_delivery`):
transferred, pending again for a later batch, or failed with the platform's reason."""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.campaign.groups import Groups
from services.campaign.handover import MAX_GROUPS, WECOM, Handover, after_delivery, next_batch
from services.gen.shequn.v1 import actions_pb2, common_pb2
from services.runtime.bus import Producer, group_key, outgoing
from services.runtime.envelope import new_action
from services.runtime.instants import stamp
from services.runtime.refusals import Invalid, NotFound
from services.runtime.settings import Settings
from services.runtime.store import (
    Document,
    Indexes,
    Store,
    field_key,
    insert_new,
    kept_for,
    page_after,
)

HANDOVERS = "handovers"
ROOM = "handover_room"
INDEXES = [
    Indexes(HANDOVERS, [IndexModel([("due_at", ASCENDING)]), IndexModel([("tenant_id", 1)])]),
    Indexes(ROOM, expiring=True),
]
_ACTION = "campaign:handover:"
_SWEEP_MAX = 50
_TRIES = 5  # writes over a version another writer changed meanwhile
_STATUS = {
    actions_pb2.DELIVERY_STATUS_DELIVERED: "delivered",
    actions_pb2.DELIVERY_STATUS_UNSUPPORTED: "unsupported",
}


def _now() -> datetime:
    return datetime.now(UTC)


class Handovers:
    def __init__(
        self, store: Store, producer: Producer, settings: Settings, directory: Groups
    ) -> None:
        self.docs, self.room, self.directory = store[HANDOVERS], store[ROOM], directory
        self.producer, self.topic = producer, settings.topic_actions
        self.per_day, self.attempts = settings.wecom_transfers_per_day, settings.handover_attempts
        self.zone = ZoneInfo(settings.default_timezone)

    async def start(self, tenant_id: str, handover: Handover) -> dict[str, Any]:
        """A handover of the leaver's groups (or those named), started at once; the same
        `handover_id` again answers the first."""
        if handover.handover_id:
            digest = hashlib.sha256(handover.handover_id.encode()).hexdigest()[:16]
            handover_id = f"h-{digest}"
        else:
            handover_id = f"h-{secrets.token_hex(8)}"
        doc_id = f"{tenant_id}:{handover_id}"
        if await self.docs.find_one({"_id": doc_id}, {"_id": 1}) is None:
            await insert_new(self.docs, [await self._planned(tenant_id, handover_id, handover)])
        return await self.get(tenant_id, handover_id)

    async def _planned(self, tenant_id: str, handover_id: str, handover: Handover) -> Document:
        if handover.groups is not None:
            found = await self.directory.of(tenant_id, handover.groups)
            if missing := [g for g in handover.groups if g not in found]:
                raise Invalid("groups", f"no event of these groups has been seen: {missing[:5]}")
            docs = list(found.values())
        else:
            docs = await self.directory.owned(tenant_id, handover.from_owner, MAX_GROUPS + 1)
            if not docs:
                raise Invalid("from_owner", "owns no active group campaign knows")
            if len(docs) > MAX_GROUPS:
                raise Invalid("from_owner", f"owns more than {MAX_GROUPS} groups: name them")
        groups = {
            field_key(d["group_id"]): {"group_id": d["group_id"], "platform": d["platform"],
                                       "state": "pending", "attempts": 0, "reason": ""}
            for d in docs
        }  # fmt: skip
        return {"_id": f"{tenant_id}:{handover_id}", "tenant_id": tenant_id,
                "handover_id": handover_id, "from_owner": handover.from_owner,
                "to_owner": handover.to_owner, "groups": groups, "batches": {},
                "version": 0, "due_at": stamp(_now()), "created": stamp(_now())}  # fmt: skip

    async def get(self, tenant_id: str, handover_id: str) -> dict[str, Any]:
        doc = await self.docs.find_one({"_id": f"{tenant_id}:{handover_id}"})
        if doc is None:
            raise NotFound("no handover of this id", "handover_id")
        groups = sorted(doc["groups"].values(), key=lambda g: g["group_id"])
        batches = [doc["batches"][n] for n in sorted(doc["batches"], key=int)]
        due = doc.get("due_at")
        return {
            "handover_id": handover_id,
            "from_owner": doc["from_owner"],
            "to_owner": doc["to_owner"],
            "counts": _counts(groups),
            "next_batch_at": _iso(due) if due else None,
            "batches": [{k: b[k] for k in ("n", "platform", "day", "state", "groups")}
                        for b in batches],
            "groups": [{k: g[k] for k in ("group_id", "platform", "state", "attempts", "reason")}
                       for g in groups],
        }  # fmt: skip

    async def page(self, tenant_id: str, limit: int, after: str | None) -> dict[str, Any]:
        """The tenant's handovers, by id, with their counts."""
        after_id = f"{tenant_id}:{after}" if after else None
        docs, more = await page_after(self.docs, {"tenant_id": tenant_id}, after_id, limit)
        page = [
            {"handover_id": d["handover_id"], "from_owner": d["from_owner"],
             "to_owner": d["to_owner"], "counts": _counts(d["groups"].values())}
            for d in docs
        ]  # fmt: skip
        return {"handovers": page, "next": page[-1]["handover_id"] if more else None}

    async def sweep(self) -> None:
        found = self.docs.find({"due_at": {"$lte": stamp(_now())}}, limit=_SWEEP_MAX)
        for doc in await found.to_list():
            await self._advance(doc)

    async def _advance(self, doc: Document) -> None:
        """Send what is written and not sent; then plan batches while there is room."""
        while True:
            for batch in doc["batches"].values():
                if batch["state"] == "sending":
                    doc = await self._send(doc, batch)
            day = _now().astimezone(self.zone).date().isoformat()
            room = await self._room(doc, day)
            planned = next_batch(doc["groups"], room)
            if planned is None:
                pending = any(g["state"] == "pending" for g in doc["groups"].values())
                later = stamp(self._tomorrow()) if pending else None
                await self._write(doc, {"due_at": later})
                return
            platform, chosen = planned
            if platform == WECOM and not await self._claim(doc, day, len(chosen)):
                continue  # another replica took the room meanwhile: look again
            n = str(len(doc["batches"]))
            batch = {"n": int(n), "platform": platform, "day": day, "state": "sending",
                     "groups": chosen, "action_id": f"{_ACTION}{doc['_id']}:{n}"}  # fmt: skip
            changes: Document = {f"batches.{n}": batch, "due_at": stamp(_now())}
            for group_id in chosen:
                entry = doc["groups"][field_key(group_id)]
                changes[f"groups.{field_key(group_id)}"] = {
                    **entry, "state": "sending", "attempts": entry["attempts"] + 1,
                }  # fmt: skip
            written = await self._write(doc, changes)
            if written is None:
                if platform == WECOM:  # not ours to use: give the room back
                    await self.room.update_one(
                        {"_id": self._room_id(doc, day)}, {"$inc": {"taken": -len(chosen)}}
                    )
                return  # another replica moved it on; the next sweep reads it anew
            doc = written

    async def _send(self, doc: Document, batch: Document) -> Document:
        first = batch["groups"][0]
        action = new_action(
            batch["action_id"], doc["tenant_id"], first,
            common_pb2.Platform.Value(batch["platform"]), "campaign",
        )  # fmt: skip
        moved = action.transfer_groups
        moved.group_ids.extend(batch["groups"])
        moved.new_owner_id, moved.previous_owner_id = doc["to_owner"], doc["from_owner"]
        key = group_key(doc["tenant_id"], first)
        await self.producer.send_many([outgoing(self.topic, key, action)])
        state = f"batches.{batch['n']}.state"
        sent = await self.docs.find_one_and_update(
            {"$and": [{"_id": doc["_id"]}, {state: "sending"}]},  # its result may be in first
            {"$set": {state: "sent"}},
            return_document=ReturnDocument.AFTER,
        )
        return sent or await self.docs.find_one({"_id": doc["_id"]}) or doc

    def _room_id(self, doc: Document, day: str) -> str:
        return f"{doc['tenant_id']}:{doc['from_owner']}:{day}"

    async def _room(self, doc: Document, day: str) -> int:
        found = await self.room.find_one({"_id": self._room_id(doc, day)})
        return max(self.per_day - int((found or {}).get("taken", 0)), 0)

    async def _claim(self, doc: Document, day: str, count: int) -> bool:
        """Take `count` of the leaver's transfers of the day, while the day has room."""
        try:
            await self.room.update_one(
                {"$and": [{"_id": self._room_id(doc, day)},
                          {"taken": {"$lte": self.per_day - count}}]},
                {"$inc": {"taken": count},
                 "$set": {"delete_after": kept_for(timedelta(days=2))}},
                upsert=True,
            )  # fmt: skip
        except DuplicateKeyError:  # the day is there, without the room: the upsert collided
            return False
        return True

    def _tomorrow(self) -> datetime:
        today = _now().astimezone(self.zone).date()
        return datetime.combine(today + timedelta(days=1), datetime.min.time(), self.zone)

    async def _write(self, doc: Document, changes: Document) -> Document | None:
        """`changes` over the version read; None when another writer changed it first."""
        unset = {k: "" for k, v in changes.items() if v is None}
        update: Document = {"$set": {k: v for k, v in changes.items() if v is not None},
                            "$inc": {"version": 1}}  # fmt: skip
        if unset:
            update["$unset"] = unset
        return await self.docs.find_one_and_update(
            {"$and": [{"_id": doc["_id"]}, {"version": doc["version"]}]},
            update,
            return_document=ReturnDocument.AFTER,
        )

    async def delivered(self, results: Sequence[actions_pb2.ActionResult]) -> None:
        """Each batch's result on its groups, once (a batch done is not done again)."""
        for r in results:
            if not r.action_id.startswith(_ACTION):
                continue
            doc_id, n = r.action_id.removeprefix(_ACTION).rsplit(":", 1)
            for _ in range(_TRIES):
                doc = await self.docs.find_one({"_id": doc_id})
                batch = (doc or {}).get("batches", {}).get(n)
                if doc is None or batch is None or batch["state"] == "done":
                    break
                if await self._write(doc, self._outcome(doc, batch, r)) is not None:
                    break

    def _outcome(self, doc: Document, batch: Document, r: actions_pb2.ActionResult) -> Document:
        status = _STATUS.get(r.status, "failed")
        refused = {item.id: item.reason for item in r.failed_items}
        changes: Document = {f"batches.{batch['n']}.state": "done",
                             f"batches.{batch['n']}.outcome": r.reason}  # fmt: skip
        again = False
        for group_id in batch["groups"]:
            key = field_key(group_id)
            entry = after_delivery(doc["groups"][key], status, refused, r.reason, self.attempts)
            changes[f"groups.{key}"] = entry
            again = again or entry["state"] == "pending"
        if again:
            changes["due_at"] = stamp(_now())
        return changes


def _counts(groups: Iterable[Document]) -> dict[str, int]:
    found = Counter(g["state"] for g in groups)
    return {s: found[s] for s in ("pending", "sending", "transferred", "failed")}


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat().replace("+00:00", "Z")
