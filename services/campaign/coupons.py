"""Coupons' I/O: a template document, a document per code, an issue document per issue.

- A code is free while it carries `free` (indexed, on free codes only): issuing it is one
  conditional update that takes `free` away and names the issue that holds it.
- An issue (`{coupon}:{issue key}`: an entry coupon `entry:{member}`, a reward's id, a client's
  id) is inserted before its code is taken, and holds the code after: asking again answers the
  same code. One left without its code (the process died) is finished by the next ask, which
  finds the code held for it, or takes one.
- Redemptions (`coupon_redeemed` events, naming the code) mark the code once."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne

from services.campaign.blacklist import Blacklist
from services.campaign.coupon import Coupon, expires, new_codes
from services.gen.shequn.v1 import events_pb2
from services.runtime import metrics
from services.runtime.envelope import occurred_at
from services.runtime.instants import stamp
from services.runtime.refusals import Conflict, NotFound
from services.runtime.store import Document, Indexes, Store, insert_new, page_after

COUPONS = "coupons"
CODES = "coupon_codes"
ISSUES = "coupon_issues"
INDEXES = [
    Indexes(COUPONS, [IndexModel([("tenant_id", ASCENDING)])]),
    Indexes(
        CODES,
        [
            IndexModel([("free", ASCENDING)]),
            IndexModel([("holder", ASCENDING)]),
            IndexModel([("redeemed_of", ASCENDING)]),
        ],
    ),
]
log = logging.getLogger(__name__)
_LEASE = timedelta(seconds=10)  # an issue not finished by then is taken over
_WAIT = 0.05


def _now() -> datetime:
    return datetime.now(UTC)


def _at(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat().replace("+00:00", "Z")


class Coupons:
    def __init__(self, store: Store, blacklist: Blacklist) -> None:
        self.coupons, self.codes, self.issues = store[COUPONS], store[CODES], store[ISSUES]
        self.blacklist = blacklist

    async def create(self, tenant_id: str, coupon: Coupon) -> str:
        coupon_id = f"c-{secrets.token_hex(6)}"
        key = f"{tenant_id}:{coupon_id}"
        # The codes first: a template is found only once its whole stock is there.
        left = coupon.stock
        while left:
            codes = {f"{tenant_id}:{c}": c for c in new_codes(min(left, 1000))}
            docs = [{"_id": i, "code": c, "coupon": key, "free": key} for i, c in codes.items()]
            left -= len(docs) - len(await insert_new(self.codes, docs))  # a code taken: again
        doc = {"_id": key, "tenant_id": tenant_id, **coupon.model_dump(), "created": stamp(_now())}
        await self.coupons.insert_one(doc)
        return coupon_id

    async def template(self, tenant_id: str, coupon_id: str) -> Coupon:
        doc = await self.coupons.find_one({"_id": f"{tenant_id}:{coupon_id}"})
        if doc is None:
            raise NotFound("no coupon of this id", "coupon_id")
        return Coupon.model_validate({k: doc[k] for k in Coupon.model_fields})

    async def get(self, tenant_id: str, coupon_id: str) -> dict[str, Any]:
        coupon, key = await self.template(tenant_id, coupon_id), f"{tenant_id}:{coupon_id}"
        remaining, redeemed = await asyncio.gather(
            self.codes.count_documents({"free": key}),
            self.codes.count_documents({"redeemed_of": key}),
        )
        return {
            "coupon_id": coupon_id,
            **coupon.model_dump(),
            "issued": coupon.stock - remaining,
            "remaining": remaining,
            "redeemed": redeemed,
        }

    async def page(self, tenant_id: str, limit: int, after: str | None) -> dict[str, Any]:
        """The tenant's coupon templates, by id (their counts: one by one)."""
        after_id = f"{tenant_id}:{after}" if after else None
        docs, more = await page_after(self.coupons, {"tenant_id": tenant_id}, after_id, limit)
        page = [
            {"coupon_id": d["_id"].split(":", 1)[1], **{k: d[k] for k in Coupon.model_fields}}
            for d in docs
        ]
        return {"coupons": page, "next": page[-1]["coupon_id"] if more else None}

    async def issue(
        self, tenant_id: str, coupon_id: str, member_id: str, issue_key: str
    ) -> dict[str, Any]:
        """A code of the coupon for the member, once per issue key; 409 `sold_out`, or
        `blacklisted` for a member on the tenant's blacklist."""
        coupon, key = await self.template(tenant_id, coupon_id), f"{tenant_id}:{coupon_id}"
        if await self.blacklist.of(tenant_id, [member_id]):
            raise Conflict("blacklisted", "member_id")
        issue_id, claim = f"{key}:{issue_key}", secrets.token_hex(8)
        mine = {"_id": issue_id, "member_id": member_id, "claim": claim, "at": stamp(_now())}
        if await insert_new(self.issues, [mine]):
            found = await self._settled(issue_id, claim, member_id)
            if found is not None:
                return _issued(found, coupon_id)
        holding = await self.codes.find_one({"holder": issue_id})
        if holding is None:
            now = _now()
            taken = {
                "holder": issue_id,
                "member_id": member_id,
                "issued_at": stamp(now),
                "expires_at": stamp(expires(now, coupon)),
            }
            holding = await self.codes.find_one_and_update(
                {"free": key},
                {"$unset": {"free": ""}, "$set": taken},
                return_document=ReturnDocument.AFTER,
            )
        if holding is None:
            await self.issues.update_one({"_id": issue_id}, {"$set": {"state": "sold_out"}})
            raise Conflict("sold_out")
        done = {
            "state": "issued",
            "code": holding["code"],
            "member_id": holding["member_id"],
            "expires_at": holding["expires_at"],
        }
        await self.issues.update_one({"_id": issue_id}, {"$set": done})
        metrics.COUPONS_ISSUED.labels(issue_key.split(":", 1)[0]).inc()
        return _issued({**mine, **done}, coupon_id)

    async def _settled(self, issue_id: str, claim: str, member_id: str) -> Document | None:
        """The issue asked before: its outcome, once it has one, or None when this ask is to
        finish it (the one before has not within its lease: it died)."""
        while True:
            doc = await self.issues.find_one({"_id": issue_id})
            if doc is None:
                return None
            if doc["member_id"] != member_id:
                raise Conflict("this issue_id was used for another member", "issue_id")
            if doc.get("state") == "issued":
                return doc
            if doc.get("state") == "sold_out":
                raise Conflict("sold_out")
            if stamp(_now()) - doc["at"] > _LEASE / timedelta(microseconds=1):
                took = await self.issues.find_one_and_update(
                    {"_id": issue_id, "claim": doc["claim"]},
                    {"$set": {"claim": claim, "at": stamp(_now())}},
                )
                if took is not None:
                    return None
            await asyncio.sleep(_WAIT)

    async def redeemed(self, events: Sequence[events_pb2.Event]) -> None:
        """`coupon_redeemed` events naming an issued code of the tenant's: that code, redeemed
        once (a redelivered event, or a second use, changes nothing)."""
        used = {
            f"{e.tenant_id}:{e.coupon_redeemed.coupon_id}": occurred_at(e)
            for e in reversed(events)  # of two uses of a code in a batch, the first
            if e.WhichOneof("payload") == "coupon_redeemed"
        }
        if not used:
            return
        found = self.codes.find({"_id": {"$in": sorted(used)}}, {"coupon": 1, "holder": 1})
        ops = [
            UpdateOne(
                {"$and": [{"_id": d["_id"]}, {"redeemed_at": {"$exists": False}}]},
                {"$set": {"redeemed_at": stamp(used[d["_id"]]), "redeemed_of": d["coupon"]}},
            )
            async for d in found
            if d.get("holder")
        ]
        if ops:
            await self.codes.bulk_write(ops, ordered=False)

    async def entry(self, events: Sequence[events_pb2.Event]) -> None:
        """Engagement's welcome hook: each newcomer welcomed gets the welcome's entry coupon,
        once per member and coupon (welcomed again after coming back, nothing more)."""
        for e in events:
            if (
                e.WhichOneof("payload") != "member_welcomed"
                or not e.member_welcomed.entry_coupon_id
            ):
                continue
            coupon_id = e.member_welcomed.entry_coupon_id
            for member in e.member_welcomed.members:
                try:
                    await self.issue(e.tenant_id, coupon_id, member.id, f"entry:{member.id}")
                except (NotFound, Conflict) as exc:  # no such coupon, none left, blacklisted
                    why = "no_coupon" if isinstance(exc, NotFound) else str(exc).rsplit(" ", 1)[-1]
                    metrics.ENTRY_COUPONS_MISSED.labels(why).inc()
                    log.warning("no entry coupon given: %s", exc, extra={"fields": {
                        "tenant_id": e.tenant_id, "coupon_id": coupon_id, "event_id": e.event_id,
                    }})  # fmt: skip


def _issued(doc: Document, coupon_id: str) -> dict[str, Any]:
    return {
        "coupon_id": coupon_id,
        "member_id": doc["member_id"],
        "code": doc["code"],
        "expires_at": _at(doc["expires_at"]),
    }
