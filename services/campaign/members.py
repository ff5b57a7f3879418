"""Who campaign has seen in the tenant's groups, from the events (its own projection, never
another service's database):

- `people`, one document per tenant member: the first time they were seen in any group of the
  tenant (`first_at`, kept by `$min`, so a late or repeated event cannot move it on), and the
  fission tasks that count them as an invitee (`invited`), which a leave looks up;
- `memberships`, one per group member (`runtime.projections`, latest event wins), with the join
  as `joined`, `"{tenant}:{epoch µs}"`, indexed: the members who joined on a day are a range of
  one single-field index (SOP steps "on day 3 after joining")."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from cachetools import LRUCache
from pymongo import ASCENDING, IndexModel, UpdateOne

from services.gen.shequn.v1 import events_pb2
from services.runtime.envelope import occurred_at
from services.runtime.instants import stamp
from services.runtime.projections import membership_changes
from services.runtime.store import (
    Document,
    Indexes,
    LatestWins,
    Store,
    field_key,
    insert_new,
    write_latest,
)

PEOPLE = "people"
MEMBERSHIPS = "memberships"
INDEXES = [Indexes(MEMBERSHIPS, [IndexModel([("joined", ASCENDING)])])]
_KNOWN = 200_000  # people whose first time this process knows: their events write nothing


def person_id(tenant_id: str, member_id: str) -> str:
    return f"{tenant_id}:{member_id}"


def joined_key(tenant_id: str, micros: int) -> str:
    return f"{tenant_id}:{micros:020d}"


def first_seen(events: Iterable[events_pb2.Event]) -> dict[str, tuple[str, str, int]]:
    """Each member who joined or posted: (tenant, member, earliest time in `events`)."""
    found: dict[str, tuple[str, str, int]] = {}
    for e in events:
        kind = e.WhichOneof("payload")
        if kind not in ("member_joined", "message_posted"):
            continue
        member = getattr(e, kind).member.id
        if not member:
            continue
        key, at = person_id(e.tenant_id, member), stamp(occurred_at(e))
        if key not in found or at < found[key][2]:
            found[key] = (e.tenant_id, member, at)
    return found


def with_join_key(changes: Sequence[LatestWins]) -> list[LatestWins]:
    """Membership changes, joins carrying their `joined` key."""
    keyed = []
    for u in changes:
        if "joined_at" in u.fields:
            tenant_id = u.on_insert["tenant_id"]
            fields = {**u.fields, "joined": joined_key(tenant_id, u.fields["joined_at"])}
            u = dataclasses.replace(u, fields=fields)
        keyed.append(u)
    return keyed


class Members:
    def __init__(self, store: Store) -> None:
        self.people, self.memberships = store[PEOPLE], store[MEMBERSHIPS]
        self._first: LRUCache[str, int] = LRUCache(_KNOWN)

    async def record(self, events: Sequence[events_pb2.Event]) -> None:
        """Who was seen first when, and the memberships, of a batch: people this process does
        not know to have been seen earlier are read in one `$in`; the new ones inserted in one
        request, and only those first seen earlier than they were read (a late event) written
        again — inserts and reads are what the embedded server does fastest."""
        firsts = {
            i: seen
            for i, seen in first_seen(events).items()
            if self._first.get(i, seen[2] + 1) > seen[2]
        }
        if firsts:
            found = self.people.find({"_id": {"$in": sorted(firsts)}}, {"first_at": 1})
            known = {d["_id"]: d.get("first_at") async for d in found}
            fresh = [
                {"_id": i, "tenant_id": t, "member_id": m, "first_at": at}
                for i, (t, m, at) in firsts.items()
                if i not in known
            ]
            again = set(await insert_new(self.people, fresh))  # another replica's meanwhile
            earlier = []
            for i, (_, _, at) in firsts.items():
                before: int | None = known.get(i)
                if i in again or (i in known and (before is None or before > at)):
                    earlier.append(UpdateOne({"_id": i}, {"$min": {"first_at": at}}))
                self._first[i] = min(at, before or at)
            if earlier:
                await self.people.bulk_write(earlier, ordered=False)
        await write_latest(self.memberships, with_join_key(membership_changes(events)))

    async def of(self, tenant_id: str, members: Iterable[str]) -> dict[str, Document]:
        """The people documents of the tenant's members (those seen), by member id."""
        ids = sorted({person_id(tenant_id, m) for m in members})
        if not ids:
            return {}
        return {d["member_id"]: d async for d in self.people.find({"_id": {"$in": ids}})}

    async def invited(self, invitees: Sequence[tuple[str, str, str]]) -> None:
        """Note the fission tasks counting members as invitees (tenant, member, task), for
        their leaves to find, in one write (an upsert: a person first seen by a join read from
        an invite code is recorded in the same batch, but nothing depends on that)."""
        if invitees:
            await self.people.bulk_write(
                [
                    UpdateOne(
                        {"_id": person_id(tenant_id, member)},
                        {"$set": {f"invited.{field_key(task)}": task},
                         "$setOnInsert": {"tenant_id": tenant_id, "member_id": member}},
                        upsert=True,
                    )
                    for tenant_id, member, task in invitees
                ],
                ordered=False,
            )  # fmt: skip

    async def joined_between(
        self, tenant_id: str, start: int, end: int, groups: set[str]
    ) -> list[dict[str, Any]]:
        """The members of `groups` who joined in [start, end) (epoch µs) and are still there."""
        found = self.memberships.find(
            {"joined": {"$gte": joined_key(tenant_id, start), "$lt": joined_key(tenant_id, end)}},
            {"group_id": 1, "member_id": 1, "name": 1, "in_group": 1},
        )
        return [d async for d in found if d.get("in_group") and d.get("group_id") in groups]

    async def in_any(self, tenant_id: str, member_id: str, groups: list[str]) -> bool:
        """Whether the member is in one of the groups now."""
        ids = [f"{tenant_id}:{g}:{member_id}" for g in groups]
        found = self.memberships.find({"_id": {"$in": ids}}, {"in_group": 1})
        return any([bool(d.get("in_group")) async for d in found])
