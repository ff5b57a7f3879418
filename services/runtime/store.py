"""MongoDB access on PyMongo's async API. Each service owns one database (prefix + its name) and
declares its indexes, created at start. Documents that are looked up by a key carry it as their
`_id`, and those ids begin with the tenant id, so a lookup by id is scoped to its tenant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

Document = dict[str, Any]
DUPLICATE_KEY = 11000


def stamp(at: datetime) -> int:
    """A time as epoch microseconds, for every time that an update writes or a filter compares.

    Dates are kept only where a document is inserted whole (TTL fields): the embedded
    MongoDB-protocol server turns a date written by `$set` or `$max` into a string, after which
    comparisons with it silently fail. Integers behave the same on both servers."""
    return int(at.timestamp() * 1_000_000)


@dataclass(frozen=True)
class Indexes:
    """The indexes of one collection."""

    collection: str
    models: Sequence[IndexModel] = field(default_factory=tuple)


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
            if spec.models:
                await self.db[spec.collection].create_indexes(list(spec.models))

    async def reachable(self) -> bool:
        try:
            await self.client.admin.command("ping")
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self.client.close()


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
