"""The places of live codes' groups: one document per group of a pool (`{tenant}:{group}`),
with `taken` (members plus reservations), the members by key, the reservations by join token
with their expiry, and the codes whose pools hold the group.

Scans take places in batches: the scans of a moment (`runtime.coalesce`) of one pool go to its
first group with room in one conditional update that takes them all — `taken` at most the
capacity less their number — or, when fewer places are left, as many as are left; so a burst of
scans costs a round trip or two, not one each (the embedded server does about 1,000 updates a
second), and no group is ever given beyond its capacity.

Joins and leaves of the pools' groups, from the events topic, in one ordered bulk write per
batch: a join with a reservation's token turns it into a member (`taken` unchanged); any other
join of someone not yet a member takes a place, a leave gives one back. Each is conditional on
the member (or the reservation) being there or not, so a redelivered event changes nothing. A
sweep gives back the places of reservations not joined in time; `next_expiry` (indexed) says
which groups to look at."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cachetools import TTLCache
from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne

from services.campaign.livecode import crossed_low, free_places
from services.gen.shequn.v1 import events_pb2
from services.runtime.coalesce import Coalesced
from services.runtime.instants import stamp
from services.runtime.store import Document, Indexes, Store, field_key, insert_new

PLACES = "livecode_places"
INDEXES = [Indexes(PLACES, [IndexModel([("next_expiry", ASCENDING)])])]
_SWEEP_MAX = 500
_FULL_KEPT, _FULL_SECONDS = 100_000, 1.0
_TRIES = 5  # of one group, while others take its last places meanwhile


@dataclass(frozen=True)
class Taken:
    """A scan's place: the group (and its index in the pool), and, for the one scan that left
    the pool under its low mark, the free places it left (`livecode.crossed_low`)."""

    group_id: str
    index: int
    low: int | None = None


def _now() -> datetime:
    return datetime.now(UTC)


class Places:
    def __init__(self, store: Store, hold: timedelta, low: int) -> None:
        self.places, self.hold, self.low = store[PLACES], hold, low
        # The full groups of each pool, read in one go once a second (a place freed waits that
        # long): scans skip them, so a pool filled in order costs one read a second, not a
        # failed update of each full group.
        self._full: TTLCache[str, set[str]] = TTLCache(_FULL_KEPT, _FULL_SECONDS)
        # The free places of the groups after a pool's i-th, for a second: while they are far
        # above the low mark, a group's last scans cannot cross it, and read nothing.
        self._rest: TTLCache[tuple[str, int], int] = TTLCache(_FULL_KEPT, _FULL_SECONDS)
        # Scans arrive one request at a time: a round waits 3 ms for those of the moment, so
        # that a burst shares its updates (a person scanning a poster waits 3 ms more).
        self._take: Coalesced[tuple[Document, str], Taken | None] = Coalesced(
            self._take_all, linger=0.003
        )

    async def make(self, tenant_id: str, groups: Sequence[str], code: str) -> None:
        """The places of a new pool's groups (those of other pools gain the code)."""
        pooled = {field_key(code): code}
        empty = {"taken": 0, "members": {}, "reservations": {}, "tenant_id": tenant_id}
        ids = [f"{tenant_id}:{g}" for g in groups]
        there = await insert_new(self.places, [{"_id": i, **empty, "codes": pooled} for i in ids])
        if there:
            await self.places.update_many(
                {"_id": {"$in": sorted(there)}}, {"$set": {f"codes.{field_key(code)}": code}}
            )

    async def of(self, ids: Sequence[str], fields: Sequence[str] = ()) -> dict[str, Document]:
        """The places of these ids ("{tenant}:{group}"), with only `fields` if named."""
        found = self.places.find(
            {"_id": {"$in": sorted(set(ids))}}, dict.fromkeys(fields, 1) or None
        )
        return {d["_id"]: d async for d in found}

    async def take(self, pool: Document, token: str) -> Taken | None:
        """A place for the scan (`token`) in the first group of the pool with room, held until
        the reservation expires; None when every group is full."""
        return await self._take((pool, token))

    async def _take_all(self, scans: list[tuple[Document, str]]) -> list[Taken | None]:
        found: dict[str, Taken | None] = {}
        by_pool: dict[str, tuple[Document, list[str]]] = {}
        for pool, token in scans:
            by_pool.setdefault(pool["_id"], (pool, []))[1].append(token)
        for pool, tokens in by_pool.values():
            found |= await self._take_in(pool, tokens)
        return [found.get(token) for _, token in scans]

    async def _full_of(self, pool: Document) -> set[str]:
        full = self._full.get(pool["_id"])
        if full is None:
            ids = [f"{pool['tenant_id']}:{g}" for g in pool["groups"]]
            found = await self.of(ids, ["taken"])
            full = {i for i, d in found.items() if d.get("taken", 0) >= pool["capacity"]}
            self._full[pool["_id"]] = full
        return full

    async def _take_in(self, pool: Document, tokens: list[str]) -> dict[str, Taken | None]:
        tenant_id, capacity = pool["tenant_id"], pool["capacity"]
        until = stamp(_now() + self.hold)
        given: dict[str, Taken | None] = {}
        waiting, full = list(tokens), await self._full_of(pool)
        for i, group_id in enumerate(pool["groups"]):
            place, tries = f"{tenant_id}:{group_id}", 0
            want = len(waiting)
            while waiting and place not in full and tries < _TRIES:
                tries += 1
                batch = waiting[:want]
                took = await self.places.find_one_and_update(
                    {"$and": [{"_id": place}, {"taken": {"$lte": capacity - len(batch)}}]},
                    {
                        "$inc": {"taken": len(batch)},
                        "$set": {f"reservations.{t}": until for t in batch},
                        "$min": {"next_expiry": until},
                    },
                    projection={"taken": 1},
                    return_document=ReturnDocument.AFTER,
                )
                if took is not None:
                    first = took["taken"] - len(batch) + 1  # `taken` after the batch's first
                    crossing = await self._crossing(pool, i, capacity - first, len(batch))
                    for n, token in enumerate(batch):
                        given[token] = Taken(group_id, i, crossing.get(n))
                    waiting = waiting[len(batch) :]
                    want = len(waiting)
                    continue
                now = await self.places.find_one({"_id": place}, {"taken": 1})
                want = min(want, capacity - int(now["taken"]) if now else 0)
                if want <= 0:
                    full.add(place)
            if not waiting:
                break
        return given | dict.fromkeys(waiting)

    async def _crossing(self, pool: Document, i: int, free: int, count: int) -> dict[int, int]:
        """Which of `count` scans taken in a row from the pool's i-th group, the first leaving
        it `free` places, left the whole pool under the low mark: {n: free places left}. The
        groups before i are full, so the pool's free places are the group's and the rest's."""
        if free >= self.low + count:
            return {}
        rest = self._rest.get((pool["_id"], i))
        if rest is None or rest < 2 * self.low:
            later = [f"{pool['tenant_id']}:{g}" for g in pool["groups"][i + 1 :]]
            found = await self.of(later, ["taken"]) if later else {}
            taken = [d["taken"] for d in found.values()]
            rest = free_places([*taken, *[0] * (len(later) - len(taken))], pool["capacity"])
            self._rest[(pool["_id"], i)] = rest
        return {n: free - n + rest for n in range(count) if crossed_low(free - n + rest, self.low)}

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


def counts(doc: Document | None, capacity: int) -> dict[str, Any]:
    """A group's members, reservations and free places."""
    place = doc or {}
    members, reserved = len(place.get("members", {})), len(place.get("reservations", {}))
    return {"members": members, "reserved": reserved,
            "free": max(capacity - place.get("taken", 0), 0)}  # fmt: skip
