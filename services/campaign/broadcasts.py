"""Broadcasts' I/O: a broadcast document (`{tenant}:{broadcast_id}`; the id follows from the
client's id, so a retried request finds the first), its actions, and the outcomes of their
delivery, read from the action results.

A broadcast is written whole — the groups it reaches and those skipped — before its actions
are produced, and marked sent after: a retry of one not marked sent produces the same actions
again (the same ids: delivery does not repeat them). WeCom's quota of group messages a day is a
document per group and day that counts the broadcasts it took, each once."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import BulkWriteError

from services.campaign.broadcast import Broadcast
from services.campaign.groups import Groups
from services.campaign.messages import messages, outcome_of, outcome_writes, outcomes_of
from services.gen.shequn.v1 import actions_pb2, common_pb2
from services.runtime import metrics
from services.runtime.bus import Producer
from services.runtime.instants import stamp
from services.runtime.refusals import NotFound
from services.runtime.settings import Settings
from services.runtime.store import (
    DELETE_AFTER,
    DUPLICATE_KEY,
    Document,
    Indexes,
    Store,
    field_key,
    insert_new,
    kept_for,
    page_after,
)

BROADCASTS = "broadcasts"
QUOTAS = "wecom_quotas"
INDEXES = [
    Indexes(BROADCASTS, [IndexModel([("tenant_id", ASCENDING)])]),
    Indexes(QUOTAS, expiring=True),
]
_ACTION = "campaign:broadcast:"
_WECOM = common_pb2.Platform.Name(common_pb2.PLATFORM_WECOM)


class Broadcasts:
    def __init__(
        self, store: Store, producer: Producer, settings: Settings, directory: Groups
    ) -> None:
        self.broadcasts, self.quotas = store[BROADCASTS], store[QUOTAS]
        self.directory = directory
        self.producer, self.topic = producer, settings.topic_actions
        self.most, self.quota = settings.broadcast_max_groups, settings.wecom_group_messages_per_day
        self.tz = ZoneInfo(settings.default_timezone)

    async def send(self, tenant_id: str, broadcast: Broadcast) -> dict[str, Any]:
        """202's answer: the broadcast's id and the groups skipped, with why."""
        if broadcast.client_id:
            digest = hashlib.sha256(broadcast.client_id.encode()).hexdigest()[:16]
            broadcast_id = f"b-{digest}"
        else:
            broadcast_id = f"b-{secrets.token_hex(8)}"
        doc_id = f"{tenant_id}:{broadcast_id}"
        doc = await self.broadcasts.find_one({"_id": doc_id})
        if doc is None:
            doc = await self._written(tenant_id, broadcast_id, broadcast)
        if doc.get("state") != "sent":
            await self._produce(doc)
        return {"broadcast_id": broadcast_id, "skipped": doc["skipped"]}

    async def _written(self, tenant_id: str, broadcast_id: str, broadcast: Broadcast) -> Document:
        reached, skipped = await self.directory.audience(tenant_id, broadcast, self.most)
        wecom = [r["group_id"] for r in reached if r["platform"] == _WECOM]
        over = await self._over_quota(tenant_id, broadcast_id, wecom)
        reason = f"WeCom lets a customer group receive {self.quota} group message(s) a day"
        skipped += [{"group_id": g, "reason": reason} for g in wecom if g in over]
        doc = {
            "_id": f"{tenant_id}:{broadcast_id}",
            "tenant_id": tenant_id,
            "broadcast_id": broadcast_id,
            "text": broadcast.text,
            "groups": [r for r in reached if r["group_id"] not in over],
            "skipped": skipped,
            "outcomes": {},
            "state": "sending",
            "created": stamp(datetime.now(UTC)),
        }
        if await insert_new(self.broadcasts, [doc]):  # the same client id at the same time
            found_doc = await self.broadcasts.find_one({"_id": doc["_id"]})
            return found_doc or doc
        return doc

    async def _over_quota(self, tenant_id: str, broadcast_id: str, groups: list[str]) -> set[str]:
        """The WeCom groups whose quota today is used up by other broadcasts; takes one of
        the others' (once per broadcast, asked again or not), all in one bulk write."""
        if not groups:
            return set()
        day = datetime.now(UTC).astimezone(self.tz).date().isoformat()
        mine, ids = f"sent.{field_key(broadcast_id)}", [f"{tenant_id}:{g}:{day}" for g in groups]
        room = {"count": {"$lt": self.quota}}
        claim = {
            "$set": {mine: True, DELETE_AFTER: kept_for(timedelta(days=2))},
            "$inc": {"count": 1},
        }
        claims = [
            UpdateOne({"$and": [{"_id": i}, {mine: {"$exists": False}}, room]}, claim, upsert=True)
            for i in ids
        ]
        try:
            await self.quotas.bulk_write(claims, ordered=False)
            return set()
        except BulkWriteError as exc:  # not matched: taken by this broadcast before, or full
            errors = exc.details.get("writeErrors", [])
            if any(e["code"] != DUPLICATE_KEY for e in errors):
                raise
        unmatched = [ids[e["index"]] for e in errors]
        taken = self.quotas.find({"_id": {"$in": unmatched}}, {"sent": 1})
        before = {d["_id"] async for d in taken if d.get("sent", {}).get(field_key(broadcast_id))}
        return {g for g, i in zip(groups, ids, strict=True) if i in unmatched and i not in before}

    async def _produce(self, doc: Document) -> None:
        await self.producer.send_many(messages(self.topic, _ACTION, doc))
        await self.broadcasts.update_one({"_id": doc["_id"]}, {"$set": {"state": "sent"}})
        metrics.BROADCASTS.inc()

    async def get(self, tenant_id: str, broadcast_id: str) -> dict[str, Any]:
        doc = await self.broadcasts.find_one({"_id": f"{tenant_id}:{broadcast_id}"})
        if doc is None:
            raise NotFound("no broadcast of this id", "broadcast_id")
        return {
            "broadcast_id": broadcast_id,
            "text": doc["text"],
            **outcomes_of(doc),
            "skipped": doc["skipped"],
        }

    async def page(self, tenant_id: str, limit: int, after: str | None) -> dict[str, Any]:
        """The tenant's broadcasts, by id, with their live counts."""
        after_id = f"{tenant_id}:{after}" if after else None
        docs, more = await page_after(self.broadcasts, {"tenant_id": tenant_id}, after_id, limit)
        page = [
            {"broadcast_id": d["broadcast_id"], "text": d["text"],
             "counts": outcomes_of(d)["counts"], "skipped": len(d["skipped"])}
            for d in docs
        ]  # fmt: skip
        return {"broadcasts": page, "next": page[-1]["broadcast_id"] if more else None}

    async def delivered(self, results: Sequence[actions_pb2.ActionResult]) -> None:
        """The outcome of each broadcast message, in one bulk write (the last result wins)."""
        if writes := outcome_writes(results, _ACTION):
            await self.broadcasts.bulk_write(writes, ordered=True)
        for r in results:
            if r.action_id.startswith(_ACTION):
                metrics.BROADCAST_DELIVERIES.labels(outcome_of(r)).inc()
