"""MongoDB access on PyMongo's async API. Each service owns one database (prefix + its name) and
declares its indexes, created at start. Documents that are looked up by a key carry it as their
`_id`, and those ids begin with the tenant id, so a lookup by id is scoped to its tenant."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.runtime.instants import stamp

log = logging.getLogger(__name__)
Document = dict[str, Any]
DUPLICATE_KEY = 11000
DELETE_AFTER = "delete_after"


def field_key(value: str) -> str:
    """A value as a field name in a document (ids may hold `.` or begin with `$`)."""
    return hashlib.blake2s(value.encode(), digest_size=8).hexdigest()


def kept_for(kept: timedelta, now: datetime | None = None) -> int:
    """The `delete_after` of a document kept for `kept` from now."""
    return stamp((now or datetime.now(UTC)) + kept)


@dataclass(frozen=True)
class Indexes:
    """The indexes of one collection. An `expiring` collection's documents carry `delete_after`
    (epoch microseconds, see `kept_for`) and are deleted by the runtime's sweep once it has
    passed. Not a TTL index: NX-27017 purges TTL collections on every read, by a scan of the
    whole collection, so every lookup would cost more as history grows; a range on a
    single-field index costs what it deletes."""

    collection: str
    models: Sequence[IndexModel] = field(default_factory=tuple)
    expiring: bool = False


def client(url: str) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)


class Store:
    def __init__(self, url: str, database: str) -> None:
        self.client = client(url)
        self.db: AsyncDatabase[Document] = self.client[database]

    def __getitem__(self, collection: str) -> AsyncCollection[Document]:
        return self.db[collection]

    async def create_indexes(self, indexes: Sequence[Indexes]) -> None:
        for spec in indexes:
            collection = self.db[spec.collection]
            await _drop_ttl_indexes(collection)
            models = list(spec.models)
            if spec.expiring:
                models.append(IndexModel([(DELETE_AFTER, ASCENDING)]))
            if models:
                await collection.create_indexes(models)

    async def sweep_expired(self, indexes: Sequence[Indexes], now: datetime) -> int:
        """Delete what has expired in every expiring collection; returns how many."""
        deleted = 0
        for spec in indexes:
            if spec.expiring:
                done = await self.db[spec.collection].delete_many(
                    {DELETE_AFTER: {"$lt": stamp(now)}}
                )
                deleted += done.deleted_count
        return deleted

    async def reachable(self) -> bool:
        try:
            await self.client.admin.command("ping")
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self.client.close()


async def _drop_ttl_indexes(collection: AsyncCollection[Document]) -> None:
    """TTL indexes of earlier versions go: expiry is the sweep's (see `Indexes`)."""
    async for index in await collection.list_indexes():
        if "expireAfterSeconds" in index:
            log.warning("dropping TTL index %s.%s", collection.name, index["name"])
            await collection.drop_index(index["name"])


@dataclass(frozen=True)
class LatestWins:
    """Set `fields` on document `_id` unless it already holds something newer than `at`,
    judged by the timestamp kept in `clock`: a late event cannot undo a newer one, and applying
    the same event twice changes nothing. Events of the same instant apply in partition order
    (a join and a kick in the same second end with the kick)."""

    _id: str
    clock: str
    at: datetime
    fields: Mapping[str, Any]
    on_insert: Mapping[str, Any] = field(default_factory=dict)


async def insert_new(collection: AsyncCollection[Document], docs: Sequence[Document]) -> set[Any]:
    """Insert in one request. A document whose `_id` is already there (a redelivery, or another
    replica first) is left as it is: its duplicate-key error is the proof. Returns those ids."""
    if not docs:
        return set()
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if not errors or any(e["code"] != DUPLICATE_KEY for e in errors):
            raise
        return {docs[e["index"]]["_id"] for e in errors}
    return set()


def over_version(doc_id: str, before: Document | None) -> Document:
    """The filter of a write over the `version` a document had when read (none: not there
    yet). Upserted, it collides with a version another writer put there first: that writer won."""
    read: Document = (
        {"version": {"$exists": False}} if before is None else {"version": before["version"]}
    )
    return {"$and": [{"_id": doc_id}, read]}


async def write_latest(
    collection: AsyncCollection[Document], updates: Sequence[LatestWins]
) -> None:
    """One bulk write for a batch; updates that lost to newer state are skipped."""
    if not updates:
        return
    ops = [
        UpdateOne(
            # `$and` spelled out: NX-27017's updates read `{_id, $or}` as `_id AND a OR b` and
            # would change another document that lacks the clock.
            {
                "$and": [
                    {"_id": u._id},
                    {"$or": [{u.clock: {"$lte": stamp(u.at)}}, {u.clock: {"$exists": False}}]},
                ]
            },
            {"$set": {**u.fields, u.clock: stamp(u.at)}, "$setOnInsert": dict(u.on_insert)},
            upsert=True,
        )
        for u in updates
    ]
    try:
        await collection.bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        # A filter that did not match an existing document makes the upsert collide with it.
        if any(e["code"] != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
            raise


async def write_when_changed(
    collection: AsyncCollection[Document], updates: Sequence[LatestWins], grain: timedelta
) -> None:
    """`write_latest` for documents touched far more often than they change (a member's last
    seen, with every message): one `$in` read, then the documents not there yet in one insert,
    and of the rest only the updates that change a field or move the clock on by `grain` —
    inserts and unchanged documents are what cost this server little and nothing."""
    latest: dict[str, LatestWins] = {}
    for u in updates:  # of one document, the latest; of one instant, the last in order
        if u._id not in latest or u.at >= latest[u._id].at:
            latest[u._id] = u
    if not latest:
        return
    fields = {name for u in latest.values() for name in (*u.fields, u.clock)}
    found = {
        d["_id"]: d
        async for d in collection.find({"_id": {"$in": sorted(latest)}}, dict.fromkeys(fields, 1))
    }
    fresh = [u for i, u in latest.items() if i not in found]
    taken = await insert_new(
        collection,
        [{"_id": u._id, **u.on_insert, **u.fields, u.clock: stamp(u.at)} for u in fresh],
    )
    changing = [u for i, u in latest.items() if i in found and changes(found[i], u, grain)]
    await write_latest(collection, [*changing, *(u for u in fresh if u._id in taken)])


def changes(doc: Document, update: LatestWins, grain: timedelta) -> bool:
    """Whether the update is worth writing over the document read."""
    clock = doc.get(update.clock)
    if not isinstance(clock, int):
        return True
    if stamp(update.at) < clock:
        return False
    if any(doc.get(name) != value for name, value in update.fields.items()):
        return True
    return stamp(update.at) - clock >= grain / timedelta(microseconds=1)


async def in_order_once(collection: AsyncCollection[Document], ops: Sequence[UpdateOne]) -> None:
    """Conditional updates applied in order (of one document, a credit before the debit it
    pays for). An upsert whose filter did not match an existing document collides with it
    (a duplicate key): it was applied before and is skipped, and the ones after it go on."""
    rest = list(ops)
    while rest:
        try:
            await collection.bulk_write(rest, ordered=True)
            return
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or any(e["code"] != DUPLICATE_KEY for e in errors):
                raise
            rest = rest[errors[0]["index"] + 1 :]


async def page_after(
    collection: AsyncCollection[Document], where: Document, after_id: str | None, limit: int
) -> tuple[list[Document], bool]:
    """Up to `limit` documents matching `where`, in `_id` order after `after_id`, and whether
    more follow: the operators' lists, a page at a time. `where` names an indexed field (the
    tenant's): a range of `_id` alone would scan the collection on NX-27017."""
    if after_id is not None:
        where = {"$and": [where, {"_id": {"$gt": after_id}}]}
    docs = await collection.find(where).sort("_id", ASCENDING).limit(limit + 1).to_list()
    return docs[:limit], len(docs) > limit
