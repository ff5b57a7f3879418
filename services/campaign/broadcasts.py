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

from pymongo.errors import DuplicateKeyError

from services.campaign.audience import counts, outcome_of
from services.campaign.broadcast import Broadcast
from services.campaign.groups import Groups
from services.gen.shequn.v1 import actions_pb2, common_pb2
from services.runtime import metrics
from services.runtime.bus import Producer, group_key, outgoing
from services.runtime.envelope import new_action
from services.runtime.instants import stamp
from services.runtime.refusals import NotFound
from services.runtime.settings import Settings
from services.runtime.store import (
    DELETE_AFTER,
    Document,
    Indexes,
    Store,
    field_key,
    insert_new,
    kept_for,
)

BROADCASTS = "broadcasts"
QUOTAS = "wecom_quotas"
INDEXES = [Indexes(QUOTAS, expiring=True)]
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
        the others' (once per broadcast, asked again or not)."""
        day = datetime.now(UTC).astimezone(self.tz).date().isoformat()
        mine, over = f"sent.{field_key(broadcast_id)}", set()
        for group_id in groups:
            quota_id = f"{tenant_id}:{group_id}:{day}"
            try:
                await self.quotas.update_one(
                    {"$and": [{"_id": quota_id}, {mine: {"$exists": False}},
                              {"count": {"$lt": self.quota}}]},
                    {"$set": {mine: True, DELETE_AFTER: kept_for(timedelta(days=2))},
                     "$inc": {"count": 1}},
                    upsert=True,
                )  # fmt: skip
            except DuplicateKeyError:  # not matched: taken by this broadcast before, or full
                if not await self.quotas.find_one({"$and": [{"_id": quota_id}, {mine: True}]}):
                    over.add(group_id)
        return over

    async def _produce(self, doc: Document) -> None:
        tenant_id, broadcast_id = doc["tenant_id"], doc["broadcast_id"]
        out = []
        for i, group in enumerate(doc["groups"]):
            platform = common_pb2.Platform.Value(group["platform"])
            action_id = f"{_ACTION}{tenant_id}:{broadcast_id}:{i}"
            action = new_action(action_id, tenant_id, group["group_id"], platform, "campaign")
            action.send_text.text = doc["text"]
            out.append(outgoing(self.topic, group_key(tenant_id, group["group_id"]), action))
        await self.producer.send_many(out)
        await self.broadcasts.update_one({"_id": doc["_id"]}, {"$set": {"state": "sent"}})
        metrics.BROADCASTS.inc()

    async def get(self, tenant_id: str, broadcast_id: str) -> dict[str, Any]:
        doc = await self.broadcasts.find_one({"_id": f"{tenant_id}:{broadcast_id}"})
        if doc is None:
            raise NotFound("no broadcast of this id", "broadcast_id")
        outcomes = doc.get("outcomes", {})
        groups = [
            {"group_id": g["group_id"], "outcome": outcomes.get(str(i), "pending")}
            for i, g in enumerate(doc["groups"])
        ]
        return {
            "broadcast_id": broadcast_id,
            "text": doc["text"],
            "counts": counts(len(doc["groups"]), outcomes),
            "groups": groups,
            "skipped": doc["skipped"],
        }

    async def delivered(self, results: Sequence[actions_pb2.ActionResult]) -> None:
        """The outcome of each broadcast action, counted once (the last result wins)."""
        for r in results:
            if not r.action_id.startswith(_ACTION):
                continue
            tenant_id, broadcast_id, i = r.action_id.removeprefix(_ACTION).split(":")
            outcome = outcome_of(r)
            metrics.BROADCAST_DELIVERIES.labels(outcome).inc()
            await self.broadcasts.update_one(
                {"_id": f"{tenant_id}:{broadcast_id}"}, {"$set": {f"outcomes.{i}": outcome}}
            )
