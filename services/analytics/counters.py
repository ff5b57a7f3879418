"""Daily counter documents, each contribution counted exactly once, at a cost that does not
grow with what has been counted.

An event comes twice when the topic is read again (a crash or a rebalance before the commit)
and when it is on the topic twice (ingestion publishes before it records, so a client's retry
after a crash publishes again). Each call counts under a token of its own, increasing with
time, and in two steps:
1. claims: each contribution's claim (`_id` its tenant and the event's id, or a day's first of
   something) is inserted with the token and the document it goes to. A claim already there
   under another token was counted then, unless that token never reached its document: the
   document keeps the last tokens that changed it (`applied_<consumer>`), and a token missing
   there, yet newer than the oldest one kept, never got there (the process died between the
   two steps). Those are claimed again, under the new token, for the document of now.
2. counters: one update per document adds the counts and posters and pushes the token.
A document is changed by the events of one partition only (a group's day, or a tenant's day
in one partition), in order, so nothing newer can push a dead call's token out of it before
its events are read again.

Neither step keeps a list of the events counted in the counter document, whose every update
would then rewrite a document growing with the day's traffic. Tokens are times, not Kafka
offsets: the embedded broker starts every topic again at offset 0 when it restarts."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta

from cachetools import LRUCache
from pymongo import ASCENDING, IndexModel, UpdateOne

from services.analytics.counting import Contribution
from services.runtime.store import DELETE_AFTER, Document, Indexes, Store, insert_new, kept_for

GROUP_DAILY = "group_daily"
TENANT_DAILY = "tenant_daily"
LIVECODE_DAILY = "livecode_daily"
SERIES_DAILY = "series_daily"
CLAIMS = "claims"
INDEXES = [
    Indexes(GROUP_DAILY, [IndexModel([("tenant_id", ASCENDING), ("group_id", ASCENDING)])]),
    Indexes(CLAIMS, expiring=True),
]
TOKENS_KEPT = 16
_SETTLED = 100_000  # lasting claims this process knows were counted: not claimed again


def _updates(
    doc_id: str, items: Sequence[Contribution], field: str, token: int, posters: bool, known: bool
) -> list[UpdateOne]:
    """The document's update, and before it, for per-member maps in a document not known to
    exist, one that creates it: NX-27017's upsert writes `talkers.<member>` as one key, yet
    updates an existing document's map by that path."""
    counts: dict[str, int] = defaultdict(int)
    highest: dict[str, int] = {}
    for c in items:
        for name, n in (*c.counts.items(), *c.keyed.items()):
            counts[name] += n
        for name, n in c.highest.items():
            highest[name] = max(n, highest.get(name, n))
    created: Document = dict(items[0].fields)
    # The token goes with the last update: it says the document got everything.
    update: Document = {
        "$inc": dict(counts),
        # A field of its own, not `applied.<consumer>`: NX-27017's upsert would write that path
        # as one key.
        "$push": {field: {"$each": [token], "$slice": -TOKENS_KEPT}},
    }
    if highest:
        update["$max"] = highest
    if posters:
        # Sent even with no posters, so that the document has the array from its creation:
        # NX-27017's `$addToSet` does nothing to a document that lacks the field.
        who = sorted({c.poster for c in items if c.poster})
        update["$addToSet"] = {"posters": {"$each": who}}
        created["posters"] = []
    if not any(c.keyed or c.highest for c in items):
        if posters:
            del created["posters"]
        return [UpdateOne({"_id": doc_id}, {**update, "$setOnInsert": created}, upsert=True)]
    first = [] if known else [UpdateOne({"_id": doc_id}, {"$setOnInsert": created}, upsert=True)]
    return [*first, UpdateOne({"_id": doc_id}, update)]


def never_applied(token: int, applied: Sequence[int]) -> bool:
    """Whether a claim's token is known not to have reached a document that kept `applied`."""
    if token in applied:
        return False
    return len(applied) < TOKENS_KEPT or token > min(applied)


class Counters:
    """One family of counter documents (a collection) as one consumer changes them."""

    def __init__(
        self,
        store: Store,
        collection: str,
        consumer: str,
        claims_kept: timedelta,
        posters: bool = False,
    ) -> None:
        self.daily = store[collection]
        self.claims = store[CLAIMS]
        self.applied = f"applied_{consumer}"
        self.claims_kept = claims_kept
        self.posters = posters
        self._settled: LRUCache[str, bool] = LRUCache(_SETTLED)
        self._known: LRUCache[str, bool] = LRUCache(_SETTLED)  # documents that exist

    async def absorb(self, contributions: Sequence[Contribution]) -> int:
        """Count what has not been counted; returns how many contributions were new."""
        token = time.time_ns()
        fresh = await self._claim(contributions, token)
        by_doc: dict[str, list[Contribution]] = defaultdict(list)
        for c in fresh:
            by_doc[c.doc_id].append(c)
        if by_doc:
            ops = [
                op
                for d, items in by_doc.items()
                for op in _updates(d, items, self.applied, token, self.posters, d in self._known)
            ]
            # In order: a document is created before its maps are updated.
            await self.daily.bulk_write(ops, ordered=True)
            for d in by_doc:
                self._known[d] = True
        for c in contributions:
            if c.lasting:
                self._settled[c.claim] = True
        return len(fresh)

    async def _claim(self, contributions: Sequence[Contribution], token: int) -> list[Contribution]:
        """The contributions to count now, each claim once, their claims under `token`."""
        first: dict[str, Contribution] = {}
        for c in contributions:
            if c.claim not in self._settled:
                first.setdefault(c.claim, c)
        delete_after = kept_for(self.claims_kept)
        docs = [
            {"_id": k, "token": token, "doc": c.doc_id, DELETE_AFTER: delete_after}
            for k, c in first.items()
        ]
        taken = await insert_new(self.claims, docs)
        if not taken:
            return list(first.values())
        # Where each was counted: a day's first of something may be claimed in another
        # partition's document (claims from before there were two families name none).
        earlier = {
            d["_id"]: (d["token"], d.get("doc", first[d["_id"]].doc_id))
            async for d in self.claims.find({"_id": {"$in": list(taken)}}, {"token": 1, "doc": 1})
        }
        doc_ids = list({doc for _, doc in earlier.values()})
        applied: dict[str, list[int]] = {
            d["_id"]: d.get(self.applied, [])
            async for d in self.daily.find({"_id": {"$in": doc_ids}}, {self.applied: 1})
        }
        again = [
            k
            for k in taken
            if k in earlier and never_applied(earlier[k][0], applied.get(earlier[k][1], []))
        ]
        if again:
            await self.claims.bulk_write(
                [
                    UpdateOne({"_id": k}, {"$set": {"token": token, "doc": first[k].doc_id}})
                    for k in again
                ],
                ordered=False,
            )
        counted_before = taken - set(again)
        return [c for k, c in first.items() if k not in counted_before]
