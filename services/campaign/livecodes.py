"""Live codes' I/O: a code document (`_id` the code, unique across tenants), and one places
document per group of a pool (`{tenant}:{group}`): `taken`, the members by key, and the
reservations by join token with their expiry.

- A scan tries the pool's groups in order, each with one conditional update that takes a place
  while fewer than the capacity are taken and records the reservation (`livecode.py`).
- Joins and leaves of the pool's groups, from the events topic, in one ordered bulk write per
  batch: a join with a reservation's token turns it into a member (`taken` unchanged); any other
  join of someone not yet a member takes a place, a leave gives one back. Each is conditional on
  the member (or the reservation) being there or not, so a redelivered event changes nothing.
- A sweep gives back the places of reservations not joined in time; `next_expiry` (indexed) says
  which groups to look at."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cachetools import TTLCache
from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne

from services.campaign.livecode import LiveCode, crossed_low, free_places
from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime import metrics
from services.runtime.bus import Outgoing, Producer, group_key, outgoing
from services.runtime.coalesce import Coalesced
from services.runtime.envelope import new_event
from services.runtime.instants import stamp
from services.runtime.refusals import Conflict, NotFound
from services.runtime.settings import Settings
from services.runtime.store import Document, Indexes, Store, field_key, insert_new

LIVECODES = "livecodes"
PLACES = "livecode_places"
INDEXES = [Indexes(PLACES, [IndexModel([("next_expiry", ASCENDING)])])]
_SWEEP_MAX = 500
_CODES_KEPT, _CODE_SECONDS = 10_000, 5.0  # scans read their code from here
_FULL_KEPT, _FULL_SECONDS = 100_000, 1.0


def _now() -> datetime:
    return datetime.now(UTC)


class LiveCodes:
    def __init__(self, store: Store, producer: Producer, settings: Settings) -> None:
        self.codes, self.places = store[LIVECODES], store[PLACES]
        self.producer, self.topic = producer, settings.topic_events
        self.hold = timedelta(minutes=settings.livecode_reservation_minutes)
        self.low = settings.livecode_low_free
        self._read: TTLCache[str, tuple[Document | None]] = TTLCache(_CODES_KEPT, _CODE_SECONDS)
        # Groups found full, not tried again for a second (a place freed waits that long):
        # scans of a full pool cost the database nothing.
        self._full: TTLCache[str, bool] = TTLCache(_FULL_KEPT, _FULL_SECONDS)
        self._send = Coalesced(self._send_all)  # the scans of a moment in one produce

    async def create(self, tenant_id: str, code: LiveCode) -> dict[str, Any]:
        # The groups' places first: a code is found only once all of its groups are.
        empty = {"taken": 0, "members": {}, "reservations": {}, "tenant_id": tenant_id}
        await insert_new(self.places, [{"_id": f"{tenant_id}:{g}", **empty} for g in code.groups])
        doc = {"_id": code.code, "tenant_id": tenant_id, **code.model_dump(), "at": stamp(_now())}
        if await insert_new(self.codes, [doc]):
            raise Conflict("this code is taken (codes are unique across tenants)", "code")
        return await self.get(tenant_id, code.code)

    async def _code(self, code: str) -> Document:
        hit = self._read.get(code)
        if hit is None:
            hit = self._read[code] = (await self.codes.find_one({"_id": code}),)
        if hit[0] is None:
            raise NotFound("no live code of this name", "code")
        return hit[0]

    async def get(self, tenant_id: str, code: str) -> dict[str, Any]:
        doc = await self.codes.find_one({"_id": code})
        if doc is None or doc["tenant_id"] != tenant_id:
            raise NotFound("no live code of this name", "code")
        ids = [f"{tenant_id}:{g}" for g in doc["groups"]]
        found = {d["_id"]: d async for d in self.places.find({"_id": {"$in": ids}})}
        groups = []
        for group_id, place_id in zip(doc["groups"], ids, strict=True):
            place = found.get(place_id, {})
            members, reserved = len(place.get("members", {})), len(place.get("reservations", {}))
            free = max(doc["capacity"] - place.get("taken", 0), 0)
            groups.append(
                {"group_id": group_id, "members": members, "reserved": reserved, "free": free}
            )
        fields = LiveCode.model_fields
        return {
            **{k: doc[k] for k in fields},
            "free": sum(g["free"] for g in groups),
            "groups": groups,
        }

    async def scan(self, code: str, scanner_id: str) -> dict[str, str]:
        """The first group of the pool with a free place, reserved for a join: its id and the
        join token; 409 `full` when none has one."""
        doc = await self._code(code)
        tenant_id, capacity, now = doc["tenant_id"], doc["capacity"], _now()
        token, until = secrets.token_urlsafe(12), stamp(now + self.hold)
        for i, group_id in enumerate(doc["groups"]):
            place = f"{tenant_id}:{group_id}"
            if self._full.get(f"{doc['_id']}:{place}"):
                continue
            took = await self.places.find_one_and_update(
                {"$and": [{"_id": place}, {"taken": {"$lt": capacity}}]},
                {
                    "$inc": {"taken": 1},
                    "$set": {f"reservations.{token}": until},
                    "$min": {"next_expiry": until},
                },
                projection={"taken": 1},
                return_document=ReturnDocument.AFTER,
            )
            if took is None:
                self._full[f"{doc['_id']}:{place}"] = True
            else:
                metrics.LIVECODE_SCANS.labels("reserved").inc()
                await self._scanned(doc, group_id, token, scanner_id, took["taken"], i, now)
                return {"group_id": group_id, "join_token": token}
        metrics.LIVECODE_SCANS.labels("full").inc()
        raise Conflict("full")

    async def _scanned(
        self,
        doc: Document,
        group_id: str,
        token: str,
        scanner: str,
        taken: int,
        i: int,
        at: datetime,
    ) -> None:
        """The scan on the events topic (for the funnels), and the alert if the pool ran low:
        the groups before this one are full, so the free places are this one's and the rest's."""
        tenant_id, capacity = doc["tenant_id"], doc["capacity"]
        out = [_event(f"{doc['_id']}:{token}", tenant_id, group_id, at)]
        scanned = out[0].livecode_scanned
        scanned.livecode, scanned.channel, scanned.join_token = doc["_id"], doc["channel"], token
        scanned.scanner_id = scanner
        if capacity - taken < self.low:
            later = [f"{tenant_id}:{g}" for g in doc["groups"][i + 1 :]]
            rest = [
                d["taken"] async for d in self.places.find({"_id": {"$in": later}}, {"taken": 1})
            ]
            free = free_places([taken, *rest, *[0] * (len(later) - len(rest))], capacity)
            if crossed_low(free, self.low):
                metrics.LIVECODES_LOW.inc()
                low = _event(f"{doc['_id']}:{token}:low", tenant_id, group_id, at)
                low.livecode_low.livecode, low.livecode_low.free = doc["_id"], free
                out.append(low)
        key = group_key(tenant_id, group_id)
        await self._send([outgoing(self.topic, key, e) for e in out])

    async def _send_all(self, batches: list[list[Outgoing]]) -> list[None]:
        await self.producer.send_many(o for batch in batches for o in batch)
        return [None] * len(batches)

    async def follow(self, events: Sequence[events_pb2.Event]) -> None:
        """Joins and leaves of the pools' groups (of other groups: no document, no change)."""
        ops: list[UpdateOne] = []
        for e in events:
            kind, place = e.WhichOneof("payload"), f"{e.tenant_id}:{e.group_id}"
            if kind == "member_joined" and e.member_joined.member.id:
                member = f"members.{field_key(e.member_joined.member.id)}"
                if token := e.member_joined.join_token:
                    held = f"reservations.{token}"
                    ops.append(UpdateOne(
                        {"$and": [{"_id": place}, {held: {"$exists": True}},
                                  {member: {"$exists": False}}]},
                        {"$unset": {held: ""}, "$set": {member: stamp(_now())}},
                    ))  # fmt: skip
                ops.append(UpdateOne(
                    {"$and": [{"_id": place}, {member: {"$exists": False}}]},
                    {"$set": {member: stamp(_now())}, "$inc": {"taken": 1}},
                ))  # fmt: skip
            elif kind == "member_left" and e.member_left.member.id:
                member = f"members.{field_key(e.member_left.member.id)}"
                ops.append(UpdateOne(
                    {"$and": [{"_id": place}, {member: {"$exists": True}}]},
                    {"$unset": {member: ""}, "$inc": {"taken": -1}},
                ))  # fmt: skip
        if ops:
            await self.places.bulk_write(ops, ordered=True)  # a group's joins and leaves in order

    async def expire(self) -> None:
        """Give back the places of reservations not joined in time."""
        now = stamp(_now())
        due = self.places.find(
            {"next_expiry": {"$lte": now}}, {"reservations": 1}, limit=_SWEEP_MAX
        )
        ops: list[UpdateOne] = []
        async for doc in due:
            held = doc.get("reservations", {})
            for token in [t for t, until in held.items() if until <= now]:
                ops.append(UpdateOne(
                    {"$and": [{"_id": doc["_id"]}, {f"reservations.{token}": {"$exists": True}}]},
                    {"$unset": {f"reservations.{token}": ""}, "$inc": {"taken": -1}},
                ))  # fmt: skip
            # Reservations made meanwhile expire after every one read: the hold is one length.
            left = [until for until in held.values() if until > now]
            later = min(left) if left else now + int(self.hold / timedelta(microseconds=1))
            ops.append(UpdateOne({"_id": doc["_id"]}, {"$set": {"next_expiry": later}}))
        if ops:
            await self.places.bulk_write(ops, ordered=True)


def _event(event_id: str, tenant_id: str, group_id: str, at: datetime) -> events_pb2.Event:
    # A scan happens on Shequn's page, not on a platform.
    return new_event(event_id, tenant_id, group_id, common_pb2.PLATFORM_UNSPECIFIED, at, at)
