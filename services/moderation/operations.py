"""What moderation's HTTP API (api.py) and gRPC API (grpc_api.py) do, written once: the audit log
and appeals, and the blacklist. Each edge authenticates and calls these; what they refuse is a
`Refused`, which each edge answers in its own terms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.gen.shequn.v1 import actions_pb2, common_pb2, decisions_pb2
from services.moderation.pipeline import BLACKLIST, DECISIONS, GROUPS
from services.runtime.auth import Principal
from services.runtime.bus import Outgoing, Producer, group_key
from services.runtime.projections import group_doc_id
from services.runtime.refusals import Invalid, NotFound
from services.runtime.settings import Settings
from services.runtime.store import Document, Store, stamp
from services.runtime.wellformed import KEY_PART, KEY_PART_RULE

UNBANNED = "{name} 已从黑名单移除，可以重新入群。"


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat()


def _key_part(field: str, value: str) -> None:
    if not KEY_PART.fullmatch(value):
        raise Invalid(field, KEY_PART_RULE)


def _decision(doc: Document) -> dict[str, Any]:
    shown = {k: v for k, v in doc.items() if k not in ("_id", "tenant_id")}
    shown["decision_id"] = doc["_id"].split(":", 1)[1]
    shown["decided_at"] = _iso(doc["decided_at"])
    return shown


class Operations:
    def __init__(self, store: Store, producer: Producer, settings: Settings) -> None:
        self.store, self.producer, self.settings = store, producer, settings

    async def list_decisions(
        self,
        tenant_id: str,
        group_id: str | None = None,
        member_id: str | None = None,
        rule: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Decisions of a tenant, newest first."""
        if not 1 <= limit <= 500:
            raise Invalid("limit", "1 to 500")
        query: dict[str, Any] = {"tenant_id": tenant_id}
        for name, value in (("group_id", group_id), ("member_id", member_id), ("rule", rule)):
            if value:
                query[name] = value
        if start or end:
            query["decided_at"] = {
                **({"$gte": stamp(start)} if start else {}),
                **({"$lt": stamp(end)} if end else {}),
            }
        found = self.store[DECISIONS].find(query).sort("decided_at", -1).limit(limit)
        return [_decision(d) for d in await found.to_list(limit)]

    async def appeal(self, principal: Principal, decision_id: str, reason: object) -> Document:
        """Appeal a decision; operators see appeals in the audit log."""
        if not isinstance(reason, str) or not reason.strip():
            raise Invalid("reason", "required")
        appeal = {
            "reason": reason,
            "by": principal.key_name,
            "at": stamp(datetime.now(UTC)),
            "status": "open",
        }
        result = await self.store[DECISIONS].update_one(
            {"_id": f"{principal.tenant_id}:{decision_id}"}, {"$set": {"appeal": appeal}}
        )
        if result.matched_count == 0:
            raise NotFound("no such decision")
        return {"decision_id": decision_id, "appeal": appeal}

    async def blacklist(self, tenant_id: str) -> list[Document]:
        """Members who may not join any group of the tenant."""
        found = self.store[BLACKLIST].find({"tenant_id": tenant_id, "active": True})
        return [
            {k: v for k, v in d.items() if k not in ("_id", "tenant_id")}
            for d in await found.to_list(10_000)
        ]

    async def add_to_blacklist(self, tenant_id: str, member_id: str, reason: str) -> Document:
        """Blacklist a member by hand."""
        _key_part("member_id", member_id)
        entry = {
            "active": True,
            "rule": "manual",
            "reason": reason or "added by an admin",
            "since": stamp(datetime.now(UTC)),
        }
        await self.store[BLACKLIST].update_one(
            {"_id": f"{tenant_id}:{member_id}"},
            {"$set": entry, "$setOnInsert": {"tenant_id": tenant_id, "member_id": member_id}},
            upsert=True,
        )
        return {"member_id": member_id, **entry}

    async def unban(self, tenant_id: str, member_id: str) -> Document:
        """The member may join again; the groups the member was removed from are told."""
        doc_id = f"{tenant_id}:{member_id}"
        entry = await self.store[BLACKLIST].find_one({"_id": doc_id, "active": True})
        if entry is None:
            raise NotFound(f"{member_id} is not blacklisted")
        await self.store[BLACKLIST].update_one({"_id": doc_id}, {"$set": {"active": False}})
        kicked_in = await self.store[DECISIONS].distinct(
            "group_id", {"tenant_id": tenant_id, "member_id": member_id, "penalty": "kick"}
        )
        now = datetime.now(UTC)
        told = sorted(set(kicked_in) | ({entry["group_id"]} if entry.get("group_id") else set()))
        platforms = {
            d["group_id"]: d.get("platform", "PLATFORM_SIM")
            async for d in self.store[GROUPS].find(
                {"_id": {"$in": [group_doc_id(tenant_id, g) for g in told]}}
            )
        }
        out = []
        for group_id in told:
            decision = decisions_pb2.Decision(
                decision_id=f"unban:{member_id}:{stamp(now)}", tenant_id=tenant_id,
                group_id=group_id, member_id=member_id, rule="unban",
                penalty=decisions_pb2.Decision.PENALTY_NONE, blacklisted=False,
            )  # fmt: skip
            decision.decided_at.FromDatetime(now)
            notice = actions_pb2.Action(
                action_id=f"moderation:unban:{member_id}:{group_id}:{stamp(now)}",
                tenant_id=tenant_id, group_id=group_id, source_service="moderation",
                platform=common_pb2.Platform.Value(platforms.get(group_id, "PLATFORM_SIM")),
            )  # fmt: skip
            notice.created_at.FromDatetime(now)
            notice.send_text.text = UNBANNED.format(name=member_id)
            key = group_key(tenant_id, group_id)
            out += [
                Outgoing(self.settings.topic_actions, key, notice.SerializeToString()),
                Outgoing(self.settings.topic_decisions, key, decision.SerializeToString()),
            ]
        await self.producer.send_many(out)
        return {"member_id": member_id, "unbanned": True, "groups_told": len(told)}
