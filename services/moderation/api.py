"""HTTP: rulesets, the audit log of decisions with appeals, and the blacklist."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from pydantic import ValidationError

from services.gen.shequn.v1 import actions_pb2, common_pb2, decisions_pb2
from services.moderation.detect.ruleset import Ruleset, merged
from services.moderation.pipeline import BLACKLIST, DECISIONS, GROUPS
from services.moderation.rulesets import Rulesets
from services.runtime.bus import Outgoing, Producer, group_key
from services.runtime.http import Admin, Operator, Viewer
from services.runtime.settings import Settings
from services.runtime.store import Document, Store, stamp

UNBANNED = "{name} 已从黑名单移除，可以重新入群。"


def invalid_field(exc: ValidationError) -> tuple[str, str]:
    """(field, "field: reason") of the first problem of a ruleset."""
    error = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in error["loc"]) or "body"
    return field, f"{field}: {error['msg']}"


def _invalid(exc: ValidationError) -> HTTPException:
    field, message = invalid_field(exc)
    return HTTPException(422, {"error": message, "field": field})


def _decision(doc: Document) -> dict[str, Any]:
    shown = {k: v for k, v in doc.items() if k not in ("_id", "tenant_id")}
    shown["decision_id"] = doc["_id"].split(":", 1)[1]
    shown["decided_at"] = datetime.fromtimestamp(doc["decided_at"] / 1e6, UTC).isoformat()
    return shown


async def list_decisions(
    store: Store,
    tenant_id: str,
    group_id: str | None = None,
    member_id: str | None = None,
    rule: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Decisions of a tenant, newest first (HTTP and gRPC)."""
    query: dict[str, Any] = {"tenant_id": tenant_id}
    for name, value in (("group_id", group_id), ("member_id", member_id), ("rule", rule)):
        if value:
            query[name] = value
    if start or end:
        query["decided_at"] = {
            **({"$gte": stamp(start)} if start else {}),
            **({"$lt": stamp(end)} if end else {}),
        }
    docs = await store[DECISIONS].find(query).sort("decided_at", -1).limit(limit).to_list(limit)
    return [_decision(d) for d in docs]


def router(store: Store, rulesets: Rulesets, producer: Producer, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.get("/rulesets/default", tags=["rulesets"])
    async def get_ruleset(principal: Viewer) -> dict[str, Any]:
        """The tenant's ruleset (the zh-CN defaults until it is set)."""
        return (await rulesets.tenant(principal.tenant_id)).model_dump()

    @api.put("/rulesets/default", tags=["rulesets"])
    async def put_ruleset(
        principal: Admin, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        """Replace the tenant's ruleset; fields left out take their defaults."""
        try:
            ruleset = Ruleset.model_validate(body)
        except ValidationError as exc:
            raise _invalid(exc) from None
        await rulesets.put_tenant(principal.tenant_id, ruleset)
        return ruleset.model_dump()

    @api.get("/rulesets/groups/{group_id}", tags=["rulesets"])
    async def get_group_ruleset(group_id: str, principal: Viewer) -> dict[str, Any]:
        """A group's override and the ruleset in effect there."""
        override = await rulesets.override(principal.tenant_id, group_id)
        effective = merged(await rulesets.tenant(principal.tenant_id), override)
        return {
            "group_id": group_id,
            "override": override or {},
            "effective": effective.model_dump(),
        }

    @api.put("/rulesets/groups/{group_id}", tags=["rulesets"])
    async def put_group_ruleset(
        group_id: str, principal: Admin, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        """Set a group's override: any ruleset fields, merged over the tenant's."""
        try:
            effective = merged(await rulesets.tenant(principal.tenant_id), body)
        except ValidationError as exc:
            raise _invalid(exc) from None
        await rulesets.put_group(principal.tenant_id, group_id, body)
        return {"group_id": group_id, "override": body, "effective": effective.model_dump()}

    @api.delete("/rulesets/groups/{group_id}", tags=["rulesets"], status_code=204)
    async def delete_group_ruleset(group_id: str, principal: Admin) -> None:
        """Remove a group's override."""
        if not await rulesets.delete_group(principal.tenant_id, group_id):
            raise HTTPException(404, {"error": "this group has no override"})

    @api.get("/moderation/decisions", tags=["moderation"])
    async def audit_log(
        principal: Viewer,
        group_id: str | None = None,
        member_id: str | None = None,
        rule: str | None = None,
        start: Annotated[datetime | None, Query(alias="from")] = None,
        end: Annotated[datetime | None, Query(alias="to")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        """The audit log: every decision with its rule, evidence and every check's answer."""
        found = await list_decisions(
            store, principal.tenant_id, group_id, member_id, rule, start, end, limit
        )
        return {"decisions": found}

    @api.post("/moderation/decisions/{decision_id}/appeal", tags=["moderation"])
    async def appeal(
        decision_id: str, principal: Operator, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        """Appeal a decision (with a `reason`); operators see appeals in the audit log."""
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise HTTPException(422, {"error": "reason: required", "field": "reason"})
        doc_id = f"{principal.tenant_id}:{decision_id}"
        appeal = {
            "reason": reason,
            "by": principal.key_name,
            "at": stamp(datetime.now(UTC)),
            "status": "open",
        }
        result = await store[DECISIONS].update_one({"_id": doc_id}, {"$set": {"appeal": appeal}})
        if result.matched_count == 0:
            raise HTTPException(404, {"error": "no such decision"})
        return {"decision_id": decision_id, "appeal": appeal}

    @api.get("/blacklist", tags=["blacklist"])
    async def list_blacklist(principal: Viewer) -> dict[str, Any]:
        """Members who may not join any group of the tenant."""
        docs = (
            await store[BLACKLIST]
            .find({"tenant_id": principal.tenant_id, "active": True})
            .to_list(10_000)
        )
        return {
            "members": [{k: v for k, v in d.items() if k not in ("_id", "tenant_id")} for d in docs]
        }

    @api.put("/blacklist/{member_id}", tags=["blacklist"])
    async def add_to_blacklist(
        member_id: str, principal: Admin, body: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, Any]:
        """Blacklist a member by hand."""
        reason = str((body or {}).get("reason", "added by an admin"))
        entry = {
            "active": True,
            "rule": "manual",
            "reason": reason,
            "since": stamp(datetime.now(UTC)),
        }
        await store[BLACKLIST].update_one(
            {"_id": f"{principal.tenant_id}:{member_id}"},
            {
                "$set": entry,
                "$setOnInsert": {"tenant_id": principal.tenant_id, "member_id": member_id},
            },
            upsert=True,
        )
        return {"member_id": member_id, **entry}

    @api.delete("/blacklist/{member_id}", tags=["blacklist"])
    async def unban(member_id: str, principal: Admin) -> dict[str, Any]:
        """Unban: the member may join again; the groups the member was removed from are told."""
        doc_id = f"{principal.tenant_id}:{member_id}"
        entry = await store[BLACKLIST].find_one({"_id": doc_id, "active": True})
        if entry is None:
            raise HTTPException(404, {"error": f"{member_id} is not blacklisted"})
        await store[BLACKLIST].update_one({"_id": doc_id}, {"$set": {"active": False}})
        kicked_in = await store[DECISIONS].distinct(
            "group_id",
            {"tenant_id": principal.tenant_id, "member_id": member_id, "penalty": "kick"},
        )
        now = datetime.now(UTC)
        told = sorted(set(kicked_in) | ({entry["group_id"]} if entry.get("group_id") else set()))
        platforms = {
            d["group_id"]: d.get("platform", "PLATFORM_SIM")
            async for d in store[GROUPS].find(
                {"_id": {"$in": [f"{principal.tenant_id}:{g}" for g in told]}}
            )
        }
        out = []
        for group_id in told:
            decision = decisions_pb2.Decision(
                decision_id=f"unban:{member_id}:{stamp(now)}", tenant_id=principal.tenant_id,
                group_id=group_id, member_id=member_id, rule="unban",
                penalty=decisions_pb2.Decision.PENALTY_NONE, blacklisted=False,
            )  # fmt: skip
            decision.decided_at.FromDatetime(now)
            notice = actions_pb2.Action(
                action_id=f"moderation:unban:{member_id}:{group_id}:{stamp(now)}",
                tenant_id=principal.tenant_id, group_id=group_id, source_service="moderation",
                platform=common_pb2.Platform.Value(platforms.get(group_id, "PLATFORM_SIM")),
            )  # fmt: skip
            notice.created_at.FromDatetime(now)
            notice.send_text.text = UNBANNED.format(name=member_id)
            key = group_key(principal.tenant_id, group_id)
            out += [
                Outgoing(settings.topic_actions, key, notice.SerializeToString()),
                Outgoing(settings.topic_decisions, key, decision.SerializeToString()),
            ]
        await producer.send_many(out)
        return {"member_id": member_id, "unbanned": True, "groups_told": len(out) // 2}

    return api
