"""Live codes' I/O: a code document (`_id` the code, unique across tenants: the public scan
names nothing else), the places of its pool's groups (`places.py`), a `livecode_scanned` event
per scan and `livecode_low` when a scan leaves the pool under its low mark, and the WeCom join
way of a pool of WeCom groups (`joinways.py`), rotated as its groups fill and empty. A fission
task's personal invite code is a code too, filling its live code's pool."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cachetools import TTLCache
from pymongo import ASCENDING, IndexModel

from services.campaign.joinways import JoinWays
from services.campaign.livecode import LiveCode
from services.campaign.places import Places, Taken, counts
from services.gen.shequn.v1 import actions_pb2, common_pb2, events_pb2
from services.runtime import metrics
from services.runtime.bus import Outgoing, Producer, group_key, outgoing
from services.runtime.coalesce import Coalesced
from services.runtime.envelope import new_event
from services.runtime.instants import stamp
from services.runtime.refusals import Conflict, NotFound
from services.runtime.settings import Settings
from services.runtime.store import Document, Indexes, Store, insert_new, page_after

LIVECODES = "livecodes"
INDEXES = [Indexes(LIVECODES, [IndexModel([("tenant_id", ASCENDING)])])]
_CODES_KEPT, _CODE_SECONDS = 10_000, 5.0  # scans read their code from here


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Scanned:
    """A scan's place: the group, the join token, and the invite code scanned, if it was a
    fission task's (its document: tenant, task, inviter)."""

    group_id: str
    join_token: str
    invite: Document | None = None


class LiveCodes:
    def __init__(
        self, store: Store, producer: Producer, settings: Settings, joinways: JoinWays
    ) -> None:
        self.codes = store[LIVECODES]
        hold = timedelta(minutes=settings.livecode_reservation_minutes)
        self.places = Places(store, hold, settings.livecode_low_free)
        self.joinways = joinways
        self.producer, self.topic = producer, settings.topic_events
        self._read: TTLCache[str, tuple[Document | None]] = TTLCache(_CODES_KEPT, _CODE_SECONDS)
        # The scans that find a code's cache entry expired read it together, in one request.
        self._reading: Coalesced[str, Document | None] = Coalesced(self._read_codes)
        self._send = Coalesced(self._send_all)  # the scans of a moment in one produce

    async def create(self, tenant_id: str, code: LiveCode) -> dict[str, Any]:
        # The groups' places first: a code is found only once all of its groups are.
        await self.places.make(tenant_id, code.groups, code.code)
        doc = {"_id": code.code, "tenant_id": tenant_id, **code.model_dump(), "at": stamp(_now())}
        if await insert_new(self.codes, [doc]):
            raise Conflict("this code is taken (codes are unique across tenants)", "code")
        await self._rotate([doc])
        return await self.get(tenant_id, code.code)

    async def add_invite(
        self, code: str, tenant_id: str, pool: str, task: str, inviter: str, group_id: str
    ) -> None:
        """A fission task's personal invite code: scanned, it fills the pool of live code
        `pool` (of the same tenant), and its joins are the inviter's. Made again, it is left
        as it was."""
        doc = {"_id": code, "tenant_id": tenant_id, "of": pool, "task": task,
               "inviter": inviter, "group_id": group_id, "at": stamp(_now())}  # fmt: skip
        await insert_new(self.codes, [doc])

    async def _read_codes(self, codes: list[str]) -> list[Document | None]:
        found = {d["_id"]: d async for d in self.codes.find({"_id": {"$in": sorted(set(codes))}})}
        return [found.get(c) for c in codes]

    async def _code(self, code: str) -> Document:
        hit = self._read.get(code)
        if hit is None:
            hit = self._read[code] = (await self._reading(code),)
        if hit[0] is None:
            raise NotFound("no live code of this name", "code")
        return hit[0]

    async def named(self, codes: set[str]) -> dict[str, Document]:
        """The documents of the codes (live codes and invite codes) that exist, by name."""
        found: dict[str, Document] = {}
        for code in codes:
            try:
                found[code] = await self._code(code)
            except NotFound:
                continue
        return found

    async def get(self, tenant_id: str, code: str) -> dict[str, Any]:
        doc = await self.codes.find_one({"_id": code})
        if doc is None or doc["tenant_id"] != tenant_id or "groups" not in doc:
            raise NotFound("no live code of this name", "code")
        ids = [f"{tenant_id}:{g}" for g in doc["groups"]]
        found = await self.places.of(ids)
        groups = [
            {"group_id": g, **counts(found.get(i), doc["capacity"])}
            for g, i in zip(doc["groups"], ids, strict=True)
        ]
        return {
            **{k: doc.get(k, "") for k in LiveCode.model_fields},
            "free": sum(g["free"] for g in groups),
            "groups": groups,
            "wecom_join_way": await self.joinways.shown(code),
        }

    async def page(self, tenant_id: str, limit: int, after: str | None) -> dict[str, Any]:
        """The tenant's live codes (not fission's invite codes), by name; their places: one
        by one."""
        where = {"$and": [{"tenant_id": tenant_id}, {"groups": {"$exists": True}}]}
        docs, more = await page_after(self.codes, where, after, limit)
        page = [{k: d.get(k, "") for k in LiveCode.model_fields} for d in docs]
        return {"livecodes": page, "next": page[-1]["code"] if more else None}

    async def scan(self, code: str, scanner_id: str) -> Scanned:
        """The first group of the pool with a free place, reserved for a join: its id and the
        join token; 409 `full` when none has one. An invite code fills its live code's pool."""
        doc = await self._code(code)
        invite: Document | None = None
        if "of" in doc:
            invite, doc = doc, await self._code(doc["of"])
        token = secrets.token_urlsafe(12)
        taken = await self.places.take(doc, token)
        if taken is None:
            metrics.LIVECODE_SCANS.labels("full").inc()
            raise Conflict("full")
        metrics.LIVECODE_SCANS.labels("reserved").inc()
        scanned = Scanned(taken.group_id, token, invite)
        await self._scanned(doc, scanned, scanner_id, taken)
        return scanned

    async def _scanned(self, doc: Document, scan: Scanned, scanner: str, taken: Taken) -> None:
        """The scan on the events topic (for the funnels), and the alert if it left the pool
        under its low mark."""
        tenant_id, at = doc["tenant_id"], _now()
        group_id, token = scan.group_id, scan.join_token
        out = [_event(f"{doc['_id']}:{token}", tenant_id, group_id, at)]
        scanned = out[0].livecode_scanned
        scanned.livecode, scanned.channel, scanned.join_token = doc["_id"], doc["channel"], token
        scanned.scanner_id = scanner
        if scan.invite is not None:
            scanned.invite_code = scan.invite["_id"]
        if taken.low is not None:
            metrics.LIVECODES_LOW.inc()
            low = _event(f"{doc['_id']}:{token}:low", tenant_id, group_id, at)
            low.livecode_low.livecode, low.livecode_low.free = doc["_id"], taken.low
            out.append(low)
        key = group_key(tenant_id, group_id)
        await self._send([outgoing(self.topic, key, e) for e in out])

    async def _send_all(self, batches: list[list[Outgoing]]) -> list[None]:
        await self.producer.send_many(o for batch in batches for o in batch)
        return [None] * len(batches)

    async def follow(self, events: Sequence[events_pb2.Event]) -> None:
        """Joins and leaves keep the places true; those of WeCom groups rotate the join ways
        of the codes whose pools hold them."""
        await self.places.follow(events)
        wecom = [
            f"{e.tenant_id}:{e.group_id}"
            for e in events
            if e.platform == common_pb2.PLATFORM_WECOM
            and e.WhichOneof("payload") in ("member_joined", "member_left")
        ]
        if wecom:
            found = await self.places.of(wecom, ["codes"])
            names = {c for d in found.values() for c in d.get("codes", {}).values()}
            if names:
                pools = self.codes.find({"_id": {"$in": sorted(names)}})
                await self._rotate([d async for d in pools if "groups" in d])

    async def expire(self) -> None:
        await self.places.expire()

    async def _rotate(self, codes: list[Document]) -> None:
        """The WeCom join ways of these live codes, in line with their pools."""
        ids = [f"{c['tenant_id']}:{g}" for c in codes for g in c["groups"]]
        found = await self.places.of(ids, ["taken"])
        await self.joinways.keep(codes, {i: d.get("taken", 0) for i, d in found.items()})

    async def delivered(self, results: Sequence[actions_pb2.ActionResult]) -> None:
        """Join-way syncs done: each code compared again with its pool, which may have moved."""
        if again := await self.joinways.delivered(results):
            found = self.codes.find({"_id": {"$in": sorted(again)}})
            await self._rotate([d async for d in found if "groups" in d])


def _event(event_id: str, tenant_id: str, group_id: str, at: datetime) -> events_pb2.Event:
    # A scan happens on Shequn's page, not on a platform.
    return new_event(event_id, tenant_id, group_id, common_pb2.PLATFORM_UNSPECIFIED, at, at)
