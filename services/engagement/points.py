"""Points (积分): an append-only ledger and one balance document per member, never negative.

Every change of a balance has a source: the check-in that earned it, an operator's grant (its
`grant_id`), later a draw. Its ledger entry is keyed by the source (`"{tenant}:{source}"`), and a
source with an entry is booked: applying it again changes nothing. The balance
(`"{tenant}:{member}"`) changes by one conditional update that also remembers the source among
the member's last ones, so that applying the same source twice matches nothing; a debit's filter
also requires the balance to cover it. Balance first, entry second: a crash between them leaves
a change whose source the balance remembers, and applying the source again writes its entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne

from services.runtime import metrics
from services.runtime.instants import stamp
from services.runtime.store import Document, Indexes, Store, in_order_once, insert_new

BALANCES = "balances"
LEDGER = "ledger"
INDEXES = [Indexes(LEDGER, [IndexModel([("position", ASCENDING)])])]
SOURCES_KEPT = 100  # per member: far more than can be in flight between balance and entry
_END = "\U0010ffff"


@dataclass(frozen=True)
class Grant:
    """A change of one member's balance, from one source."""

    tenant_id: str
    member_id: str
    source: str
    points: int
    reason: str
    at: datetime


@dataclass(frozen=True)
class Booked:
    """A grant's result: whether it was booked (now or before), and the balance right after it
    (for one booked before, the balance now)."""

    grant: Grant
    booked: bool
    balance: int
    entry: Document | None = None  # the entry booked earlier, if the source had one


def _entry_id(g: Grant) -> str:
    return f"{g.tenant_id}:{g.source}"


def _balance_id(tenant_id: str, member_id: str) -> str:
    return f"{tenant_id}:{member_id}"


def _position(tenant_id: str, member_id: str, at: int, source: str) -> str:
    return f"{tenant_id}:{member_id}:{at:020d}:{source}"


def _change(g: Grant) -> UpdateOne:
    # `$and` spelled out: NX-27017 reads `{_id, ...}` filters of updates loosely (store.py).
    unseen = [{"_id": _balance_id(g.tenant_id, g.member_id)}, {"recent": {"$nin": [g.source]}}]
    update: Document = {
        "$inc": {"balance": g.points},
        "$push": {"recent": {"$each": [g.source], "$slice": -SOURCES_KEPT}},
    }
    if g.points < 0:  # a debit must be covered, and never creates a balance
        return UpdateOne({"$and": [*unseen, {"balance": {"$gte": -g.points}}]}, update)
    update["$setOnInsert"] = {"tenant_id": g.tenant_id, "member_id": g.member_id}
    return UpdateOne({"$and": unseen}, update, upsert=True)


class Points:
    def __init__(self, store: Store) -> None:
        self.balances = store[BALANCES]
        self.ledger = store[LEDGER]

    async def apply(self, grants: Sequence[Grant]) -> list[Booked]:
        """Book the grants, in order: one read of the entries, one write of the balances, one
        read of them and one insert of the new entries, however many there are."""
        if not grants:
            return []
        ids = sorted({_entry_id(g) for g in grants})
        earlier = {d["_id"]: d async for d in self.ledger.find({"_id": {"$in": ids}})}
        new = [g for g in grants if _entry_id(g) not in earlier]
        await in_order_once(self.balances, [_change(g) for g in new])
        balances = await self._balances({(g.tenant_id, g.member_id) for g in grants})
        # Each result has the balance right after its change: the balance now, less the later
        # changes of the batch.
        running = {i: int(d.get("balance", 0)) for i, d in balances.items()}
        first: dict[str, int] = {}  # a source twice in a batch changed it the first time only
        for n, g in enumerate(grants):
            first.setdefault(g.source, n)
        results = []
        for n, g in reversed(list(enumerate(grants))):
            member = _balance_id(g.tenant_id, g.member_id)
            doc = balances.get(member, {})
            before = earlier.get(_entry_id(g))
            booked = before is not None or g.source in doc.get("recent", [])
            results.append(Booked(g, booked, running.get(member, 0), before))
            if booked and before is None and first[g.source] == n:
                running[member] = running.get(member, 0) - g.points
        results.reverse()
        entries = [_entry(r.grant) for r in results if r.booked and r.entry is None]
        for doc in entries:
            metrics.POINTS_BOOKED.labels(doc["source"].split(":", 1)[0]).inc()
        await insert_new(self.ledger, entries)
        return results

    async def _balances(self, members: set[tuple[str, str]]) -> dict[str, Document]:
        ids = sorted(_balance_id(t, m) for t, m in members)
        return {d["_id"]: d async for d in self.balances.find({"_id": {"$in": ids}})}

    async def balance(self, tenant_id: str, member_id: str) -> int:
        doc = await self.balances.find_one({"_id": _balance_id(tenant_id, member_id)})
        return int(doc["balance"]) if doc else 0

    async def entries(
        self, tenant_id: str, member_id: str, limit: int, before: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A member's ledger, newest first, a page at a time; the cursor of the next page."""
        prefix = f"{tenant_id}:{member_id}:"  # member ids have no ':' (wellformed.KEY_PART)
        upper = prefix + before if before else prefix + _END
        docs = (
            await self.ledger.find({"position": {"$gte": prefix, "$lt": upper}})
            .sort("position", -1)
            .limit(limit)
            .to_list(limit)
        )
        items = [
            {"source": d["source"], "points": d["points"], "reason": d["reason"], "at": d["at"]}
            for d in docs
        ]
        more = len(docs) == limit
        return items, docs[-1]["position"][len(prefix) :] if more else None


def _entry(g: Grant) -> Document:
    at = stamp(g.at)
    return {
        "_id": _entry_id(g),
        "position": _position(g.tenant_id, g.member_id, at, g.source),
        "member_id": g.member_id,
        "source": g.source,
        "points": g.points,
        "reason": g.reason,
        "at": at,
    }
