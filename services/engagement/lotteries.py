"""Lottery's I/O: a lottery document, a stock document per prize, a draw document per draw.

Each step of a draw (`lottery.py`) is one conditional single-document update:
- the debit is a points grant whose source is the draw (booked once, never below zero);
- the pick is written into the draw only over the state it was made in (`started`, once paid,
  or `debited`, when the prize picked before ran out), so two finishers agree on one prize;
- the stock is taken only while some is left and only if this draw has not taken it already
  (the stock document lists the draws that took from it: at most its stock);
- then the draw is marked won. A draw whose prize ran out meanwhile picks again; one that
  finds none left gets its points back (a grant of its own source).
A draw left unfinished (the process died) is finished by the client asking again with the same
`draw_id`, or by the repair sweep once it is `_STALE` old: every draw ends accounted for."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.engagement.lottery import FINISHED, Lottery, pick
from services.engagement.points import Grant, Points
from services.runtime import metrics
from services.runtime.instants import stamp
from services.runtime.refusals import Conflict, NotFound
from services.runtime.store import Document, Indexes, Store

LOTTERIES = "lotteries"
STOCK = "lottery_stock"
DRAWS = "draws"
INDEXES = [
    Indexes(
        DRAWS,
        [IndexModel([("unfinished_since", ASCENDING)]), IndexModel([("position", ASCENDING)])],
    )
]
_STALE = timedelta(seconds=10)
_REPAIRED_AT_ONCE = 200


class Lotteries:
    def __init__(self, store: Store, points: Points) -> None:
        self.lotteries, self.stock, self.draws = store[LOTTERIES], store[STOCK], store[DRAWS]
        self.points = points

    async def create(self, tenant_id: str, lottery: Lottery) -> str:
        lottery_id = f"l-{secrets.token_hex(6)}"
        key = f"{tenant_id}:{lottery_id}"
        # Stock first: a lottery is found only once all of its prizes are.
        await self.stock.insert_many(
            [
                {"_id": f"{key}:{i}", "remaining": p.stock, "taken": []}
                for i, p in enumerate(lottery.prizes)
            ]
        )
        doc = {"_id": key, "tenant_id": tenant_id, **lottery.model_dump(), "created": stamp(_now())}
        await self.lotteries.insert_one(doc)
        return lottery_id

    async def get(self, tenant_id: str, lottery_id: str) -> dict[str, Any]:
        lottery, remaining = await self._read(tenant_id, lottery_id)
        prizes = [
            {**p.model_dump(), "remaining": left}
            for p, left in zip(lottery.prizes, remaining, strict=True)
        ]
        return {"lottery_id": lottery_id, **lottery.model_dump(), "prizes": prizes}

    async def _read(self, tenant_id: str, lottery_id: str) -> tuple[Lottery, list[int]]:
        key = f"{tenant_id}:{lottery_id}"
        doc = await self.lotteries.find_one({"_id": key})
        if doc is None:
            raise NotFound("no lottery of this id")
        lottery = Lottery.model_validate({k: doc[k] for k in Lottery.model_fields})
        return lottery, await self._remaining(key, len(lottery.prizes))

    async def _remaining(self, key: str, prizes: int) -> list[int]:
        ids = [f"{key}:{i}" for i in range(prizes)]
        stock = {
            d["_id"]: d["remaining"]
            async for d in self.stock.find({"_id": {"$in": ids}}, {"remaining": 1})
        }
        return [int(stock.get(i, 0)) for i in ids]

    async def draw(
        self, tenant_id: str, lottery_id: str, member_id: str, draw_id: str
    ) -> dict[str, Any]:
        """A draw (or, for a `draw_id` seen before, that draw's outcome), finished."""
        lottery, remaining = await self._read(tenant_id, lottery_id)
        key = f"{tenant_id}:{lottery_id}:{draw_id}"
        now = stamp(_now())
        started: Document = {
            "_id": key,
            "tenant_id": tenant_id,
            "lottery_id": lottery_id,
            "draw_id": draw_id,
            "member_id": member_id,
            "cost": lottery.cost,
            "state": "started",
            "at": now,
            "position": f"{tenant_id}:{lottery_id}:{member_id}:{now:020d}:{draw_id}",
            "unfinished_since": now,
        }
        if not any(remaining):
            started |= {"state": "refused", "reason": "sold_out"}
            del started["unfinished_since"]
        fresh = True
        try:
            await self.draws.insert_one(started)
            doc = started
        except DuplicateKeyError:
            fresh = False
            found = await self.draws.find_one({"_id": key})
            assert found is not None
            if found["member_id"] != member_id:
                raise Conflict("draw_id: already used for another member's draw") from None
            doc = found
        doc = await self.finish(doc, lottery)
        if fresh:  # counted once, not for a retried draw_id
            metrics.DRAWS.labels(doc.get("reason", doc["state"])).inc()
        balance = await self.points.balance(tenant_id, member_id)
        if doc["state"] in ("refused", "refunded"):
            raise Conflict(doc["reason"])
        prize = lottery.prizes[doc["prize"]].name if doc["state"] == "won" else None
        return {"draw_id": draw_id, "prize": {"name": prize} if prize else None, "balance": balance}

    async def finish(self, doc: Document, lottery: Lottery | None = None) -> Document:
        """Take a draw through its remaining steps; returns it finished."""
        if lottery is None:
            lottery, _ = await self._read(doc["tenant_id"], doc["lottery_id"])
        while doc["state"] not in FINISHED:
            doc = await getattr(self, f"_{doc['state']}")(doc, lottery)
        return doc

    async def _started(self, doc: Document, lottery: Lottery) -> Document:
        debit = Grant(
            doc["tenant_id"], doc["member_id"], _source(doc), -doc["cost"], "抽奖", _now()
        )
        [booked] = await self.points.apply([debit])
        if booked.booked:
            # Paid: the pick is written with the step (one write less); a crash before it
            # leaves `started`, whose debit, taken again, is found booked.
            return await self._pick(doc, lottery, "started")
        return await self._step(
            doc, "started", {"state": "refused", "reason": "insufficient_points"}
        )

    async def _debited(self, doc: Document, lottery: Lottery) -> Document:
        return await self._pick(doc, lottery, "debited")

    async def _pick(self, doc: Document, lottery: Lottery, state: str) -> Document:
        key = f"{doc['tenant_id']}:{doc['lottery_id']}"
        remaining = await self._remaining(key, len(lottery.prizes))
        try:
            prize = pick([p.weight for p in lottery.prizes], remaining, lottery.blank_weight)
        except LookupError:
            refund = Grant(
                doc["tenant_id"],
                doc["member_id"],
                f"refund:{_source(doc)}",
                doc["cost"],
                "抽奖退回",
                _now(),
            )
            await self.points.apply([refund])
            return await self._step(doc, state, {"state": "refunded", "reason": "sold_out"})
        if prize is None:
            return await self._step(doc, state, {"state": "blank"})
        return await self._step(doc, state, {"state": "picked", "prize": prize})

    async def _picked(self, doc: Document, lottery: Lottery) -> Document:
        stock_id = f"{doc['tenant_id']}:{doc['lottery_id']}:{doc['prize']}"
        taken = await self.stock.update_one(
            {
                "$and": [
                    {"_id": stock_id},
                    {"remaining": {"$gt": 0}},
                    {"taken": {"$nin": [doc["_id"]]}},
                ]
            },
            {"$inc": {"remaining": -1}, "$push": {"taken": doc["_id"]}},
        )
        if taken.matched_count or await self.stock.find_one({"_id": stock_id, "taken": doc["_id"]}):
            return await self._step(doc, "picked", {"state": "won"})
        # Gone while this draw picked it: pick again.
        return await self._step(doc, "picked", {"state": "debited"}, unset="prize")

    async def _step(self, doc: Document, state: str, fields: Document, unset: str = "") -> Document:
        """Move the draw on from `state`, unless another finisher did: then take its word."""
        update: Document = {"$set": fields}
        if fields["state"] in FINISHED:
            update["$unset"] = {"unfinished_since": ""}
        if unset:
            update.setdefault("$unset", {})[unset] = ""
        moved = await self.draws.find_one_and_update(
            {"$and": [{"_id": doc["_id"]}, {"state": state}]},
            update,
            return_document=ReturnDocument.AFTER,
        )
        found = moved or await self.draws.find_one({"_id": doc["_id"]})
        assert found is not None
        return found

    async def repair(self) -> int:
        """Finish the draws left unfinished for a while; returns how many."""
        stale = stamp(_now() - _STALE)
        found = self.draws.find({"unfinished_since": {"$lte": stale}}, limit=_REPAIRED_AT_ONCE)
        docs = [d async for d in found]
        for doc in docs:
            await self.finish(doc)
        return len(docs)

    async def draws_of(
        self, tenant_id: str, lottery_id: str, member_id: str, limit: int, before: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A member's draws in a lottery, newest first, a page at a time; the next page's cursor."""
        prefix = f"{tenant_id}:{lottery_id}:{member_id}:"
        upper = prefix + (before or "\U0010ffff")
        found = self.draws.find({"position": {"$gte": prefix, "$lt": upper}})
        docs = await found.sort("position", -1).limit(limit).to_list(limit)
        items = [
            {"draw_id": d["draw_id"], "state": d["state"], "prize": d.get("prize"), "at": d["at"]}
            for d in docs
        ]
        more = len(docs) == limit
        return items, docs[-1]["position"][len(prefix) :] if more else None


def _source(doc: Document) -> str:
    return f"draw:{doc['lottery_id']}:{doc['draw_id']}"


def _now() -> datetime:
    return datetime.now(UTC)
