"""Group-day counter documents, updated exactly once per event.

A counter document remembers the events it has absorbed. Each batch is one bulk write of
single-document updates whose filter says "none of these events is absorbed yet": the counts,
the posters and the absorbed ids change together or not at all. An update whose filter fails
(a redelivery) collides with the existing document; for those, the document is read, the
events already absorbed are dropped, and the rest is written again."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from services.analytics.counting import Contribution
from services.runtime.store import DUPLICATE_KEY, Document, Indexes

GROUP_DAILY = "group_daily"
INDEXES = [Indexes(GROUP_DAILY, [IndexModel([("tenant_id", ASCENDING), ("group_id", ASCENDING)])])]
_MAX_ROUNDS = 5


def _update(doc_id: str, items: Sequence[Contribution]) -> UpdateOne:
    counts: dict[str, int] = defaultdict(int)
    for c in items:
        for name, n in c.counts.items():
            counts[name] += n
    ids = [c.event_id for c in items]
    posters = sorted({c.poster for c in items if c.poster})
    first = items[0]
    update: Document = {
        "$inc": dict(counts),
        "$addToSet": {"absorbed": {"$each": ids}, "posters": {"$each": posters}},
        "$setOnInsert": {
            "tenant_id": first.tenant_id,
            "group_id": first.group_id,
            "date": first.day,
        },
    }
    return UpdateOne({"_id": doc_id, "absorbed": {"$nin": ids}}, update, upsert=True)


async def absorb(collection: AsyncCollection[Document], items: Iterable[Contribution]) -> int:
    """Apply contributions not absorbed before; returns how many were new."""
    pending: dict[str, list[Contribution]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for c in items:
        if (c.doc_id, c.event_id) not in seen:
            seen.add((c.doc_id, c.event_id))
            pending[c.doc_id].append(c)
    applied = 0
    for _ in range(_MAX_ROUNDS):
        pending = {k: v for k, v in pending.items() if v}
        if not pending:
            return applied
        doc_ids = list(pending)
        try:
            await collection.bulk_write([_update(d, pending[d]) for d in doc_ids], ordered=False)
            conflicts: set[str] = set()
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e["code"] != DUPLICATE_KEY for e in errors):
                raise
            conflicts = {doc_ids[e["index"]] for e in errors}
        applied += sum(len(pending[d]) for d in doc_ids if d not in conflicts)
        if not conflicts:
            return applied
        absorbed: dict[str, set[str]] = {
            doc["_id"]: set(doc.get("absorbed", []))
            async for doc in collection.find({"_id": {"$in": list(conflicts)}}, {"absorbed": 1})
        }
        pending = {
            d: [c for c in pending[d] if c.event_id not in absorbed.get(d, set())]
            for d in conflicts
        }
    raise RuntimeError("group-day counters kept conflicting; giving up on this batch")
