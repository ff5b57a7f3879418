"""What moderation's HTTP API (api.py) and gRPC API (grpc_api.py) do, written once: the audit log
and appeals, the blacklist, and member dedupe. Each edge authenticates and calls these; what they
refuse is a `Refused`, which each edge answers in its own terms.

Dedupe plans are documents keyed `"{tenant}:{plan}"`. A plan can be applied for 24 hours and is
kept for a week after that (TTL), so that what was applied can still be read. Applying is
claimed with one conditional update (planned → applying), so of two concurrent applies one acts;
the kicks and decisions it publishes have ids that follow from the plan, so an apply interrupted
before it finished may be taken over after a minute without kicking anyone twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

from pymongo import ASCENDING, IndexModel

from services.gen.shequn.v1 import common_pb2, decisions_pb2
from services.moderation.dedupe import (
    RULE,
    Membership,
    Removal,
    action_id,
    plan,
    recheck,
    rulings,
)
from services.moderation.examine import member_state
from services.moderation.judge import Ruling
from services.moderation.pipeline import (
    BLACKLIST,
    DECISIONS,
    GROUPS,
    MEMBERS,
    Moderation,
)
from services.runtime.auth import Principal
from services.runtime.bus import Producer, group_key, outgoing
from services.runtime.envelope import new_action
from services.runtime.instants import stamp
from services.runtime.projections import group_doc_id, member_doc_id
from services.runtime.refusals import Conflict, Invalid, NotFound
from services.runtime.settings import Settings
from services.runtime.store import DELETE_AFTER, Document, Indexes, Store, kept_for
from services.runtime.wellformed import key_part

PLANS = "dedupe_plans"
PLAN_VALID = timedelta(hours=24)
PLAN_KEPT = timedelta(days=7)  # after it expires: what was applied stays readable
APPLY_LEASE = timedelta(minutes=1)  # an apply claimed longer ago than this was interrupted
UNBANNED = "{name} 已从黑名单移除，可以重新入群。"
MANUAL = "manual"  # the rule of a blacklist entry added by hand
_EPOCH = datetime.fromtimestamp(0, UTC)

# NX-27017 uses single-field indexes for equality only (not for `$in`, not compound ones), and
# answers an equality query on an indexed array field as if the field were a string, so `tags`
# has no index: a series is found by scanning the tenant's groups through `tenant_id`, and its
# members group by group through `group_id`. An operator's dry run can afford that.
INDEXES = [
    Indexes(PLANS, expiring=True),
    Indexes(GROUPS, [IndexModel([("tenant_id", ASCENDING)])]),
    Indexes(MEMBERS, [IndexModel([("group_id", ASCENDING)])]),
]


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat()


def _plan_doc_id(tenant_id: str, plan_id: str) -> str:
    key_part("plan_id", plan_id)
    return f"{tenant_id}:{plan_id}"


def _decision(doc: Document) -> dict[str, Any]:
    shown = {k: v for k, v in doc.items() if k not in ("_id", "tenant_id")}
    shown["decision_id"] = doc["_id"].split(":", 1)[1]
    shown["decided_at"] = _iso(doc["decided_at"])
    return shown


def _memberships(members: Iterable[Document], groups: Iterable[Document]) -> list[Membership]:
    """Current memberships; the group directory's owner counts as the group's owner."""
    owners = {g["group_id"]: g.get("owner_id") for g in groups}
    found = []
    for doc in members:
        state = member_state(doc)
        if state is not None:
            group_id, member_id = doc["group_id"], doc["member_id"]
            role = "owner" if owners.get(group_id) == member_id else state.role
            found.append(Membership(group_id, member_id, state.joined_at or _EPOCH, role))
    return found


def _shown_plan(doc: Document) -> dict[str, Any]:
    """A stored plan as both APIs answer it, times in ISO 8601."""
    hidden = ("_id", "tenant_id", DELETE_AFTER, "claimed_at")
    shown = {k: v for k, v in doc.items() if k not in hidden}
    for name in ("created_at", "expires_at", "applied_at"):
        if name in shown:
            shown[name] = _iso(shown[name])
    shown["members"] = [
        {**m, "kept": {**m["kept"], "joined_at": _iso(m["kept"]["joined_at"])}}
        for m in doc["members"]
    ]
    return shown


class Operations:
    def __init__(
        self, store: Store, producer: Producer, settings: Settings, moderation: Moderation
    ) -> None:
        self.store, self.producer, self.settings = store, producer, settings
        self.moderation = moderation

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
        """Blacklist a member by hand: a decision like any other (the audit log, the blacklist,
        shequn.decisions.v1, so every service's projection learns it), tenant-wide (no group).
        Asked again while the entry stands, the same decision is published again."""
        key_part("member_id", member_id)
        reason = (reason or "added by an admin")[:500]
        entry = await self.store[BLACKLIST].find_one({"_id": f"{tenant_id}:{member_id}"}) or {}
        standing = entry.get("active") and entry.get("rule") == MANUAL
        at = datetime.fromtimestamp(entry["since"] / 1e6, UTC) if standing else datetime.now(UTC)
        decision = decisions_pb2.Decision(
            decision_id=entry["decision_id"] if standing else f"manual:{member_id}:{stamp(at)}",
            tenant_id=tenant_id, member_id=member_id, rule=MANUAL, check=MANUAL,
            evidence=reason, span_start=-1, span_end=-1,
            penalty=decisions_pb2.Decision.PENALTY_NONE, blacklisted=True,
        )  # fmt: skip
        decision.decided_at.FromDatetime(at)
        await self.moderation.publish([Ruling(decision)])
        return {
            "member_id": member_id, "active": True, "rule": MANUAL, "reason": reason,
            "since": stamp(at), "decision_id": decision.decision_id,
        }  # fmt: skip

    async def unban(self, tenant_id: str, member_id: str) -> Document:
        """The member may join again; the groups the member was removed from are told. One
        conditional update ends the ban; the unban's ids follow from the ban it ends, so a
        retried request (or one that stopped half-way) tells the same groups the same thing
        again, which delivery does not repeat, and answers the same."""
        key_part("member_id", member_id)
        doc_id = f"{tenant_id}:{member_id}"
        now = datetime.now(UTC)
        entry = await self.store[BLACKLIST].find_one_and_update(
            {"_id": doc_id, "active": True}, {"$set": {"active": False, "unbanned_at": stamp(now)}}
        )
        if entry is None:  # not banned, or unbanned already: a retry is answered again
            entry = await self.store[BLACKLIST].find_one({"_id": doc_id})
            if entry is None or entry.get("active") or "unbanned_at" not in entry:
                raise NotFound(f"{member_id} is not blacklisted")
            now = datetime.fromtimestamp(entry["unbanned_at"] / 1e6, UTC)
        unban_id = f"unban:{member_id}:{entry.get('since', 0)}"
        # Groups the member was kicked from for a violation; a dedupe removal was none.
        kicked_in = await self.store[DECISIONS].distinct(
            "group_id",
            {
                "tenant_id": tenant_id,
                "member_id": member_id,
                "penalty": "kick",
                "rule": {"$ne": RULE},
            },
        )
        told = sorted(set(kicked_in) | ({entry["group_id"]} if entry.get("group_id") else set()))
        platforms = {
            d["group_id"]: d.get("platform", "PLATFORM_SIM")
            async for d in self.store[GROUPS].find(
                {"_id": {"$in": [group_doc_id(tenant_id, g) for g in told]}}
            )
        }
        decision = decisions_pb2.Decision(
            decision_id=unban_id, tenant_id=tenant_id, member_id=member_id, rule="unban",
            penalty=decisions_pb2.Decision.PENALTY_NONE, blacklisted=False,
        )  # fmt: skip
        decision.decided_at.FromDatetime(now)
        out = [outgoing(self.settings.topic_decisions, group_key(tenant_id, ""), decision)]
        for group_id in told:
            platform = common_pb2.Platform.Value(platforms.get(group_id, "PLATFORM_SIM"))
            notice_id = f"moderation:{unban_id}:{group_id}"
            notice = new_action(notice_id, tenant_id, group_id, platform, "moderation", at=now)
            notice.send_text.text = UNBANNED.format(name=member_id)
            out.append(
                outgoing(self.settings.topic_actions, group_key(tenant_id, group_id), notice)
            )
        await self.producer.send_many(out)
        return {"member_id": member_id, "unbanned": True, "groups_told": len(told)}

    async def plan_dedupe(self, principal: Principal, series: str) -> dict[str, Any]:
        """The dry run: members in two or more groups of the series (the groups tagged
        `series`), the membership each keeps and the ones to remove. Changes no membership."""
        tenant_id = principal.tenant_id
        key_part("series", series)
        groups = [
            g
            async for g in self.store[GROUPS].find({"tenant_id": tenant_id, "tags": series})
            if g.get("status") != "dismissed"
        ]
        members = await asyncio.gather(
            *(
                self.store[MEMBERS]
                .find({"group_id": g["group_id"], "tenant_id": tenant_id})
                .to_list(None)
                for g in groups
            )
        )
        found = plan(_memberships(chain.from_iterable(members), groups))
        now = datetime.now(UTC)
        plan_id = uuid.uuid4().hex
        doc = {
            "_id": f"{tenant_id}:{plan_id}",
            "tenant_id": tenant_id,
            "plan_id": plan_id,
            "series": series,
            "status": "planned",
            "created_at": stamp(now),
            "created_by": principal.key_name,
            "expires_at": stamp(now + PLAN_VALID),
            DELETE_AFTER: kept_for(PLAN_VALID + PLAN_KEPT, now),
            "groups": sorted(
                ({"group_id": g["group_id"], "name": g.get("name", "")} for g in groups),
                key=lambda g: g["group_id"],
            ),
            "members": [
                {
                    "member_id": p.member_id,
                    "kept": {"group_id": p.kept.group_id, "joined_at": stamp(p.kept.joined_at)},
                    "removals": list(p.removals),
                    "skipped": [{"group_id": s.group_id, "reason": s.reason} for s in p.skipped],
                }
                for p in found
            ],
            "counts": {
                "groups": len(groups),
                "members": len(found),
                "removals": sum(len(p.removals) for p in found),
                "skipped": sum(len(p.skipped) for p in found),
            },
        }
        await self.store[PLANS].insert_one(doc)
        return _shown_plan(doc)

    async def dedupe_plan(self, tenant_id: str, plan_id: str) -> dict[str, Any]:
        """A plan of the tenant's, with what was done if it was applied."""
        doc = await self.store[PLANS].find_one({"_id": _plan_doc_id(tenant_id, plan_id)})
        if doc is None:
            raise NotFound(f"no dedupe plan {plan_id}")
        return _shown_plan(doc)

    async def apply_dedupe(self, principal: Principal, plan_id: str) -> dict[str, Any]:
        """Carry out a plan, once: a kick and a decision for each removal still due; members
        who have left since the plan are skipped. Nobody is blacklisted."""
        tenant_id = principal.tenant_id
        doc_id = _plan_doc_id(tenant_id, plan_id)
        now = datetime.now(UTC)
        unclaimed = [
            {"status": "planned"},
            {"status": "applying", "claimed_at": {"$lt": stamp(now - APPLY_LEASE)}},
        ]
        claimed = await self.store[PLANS].find_one_and_update(
            # `$and` spelled out: see store.write_latest (NX-27017's `{_id, $or}`).
            {"$and": [{"_id": doc_id}, {"expires_at": {"$gt": stamp(now)}}, {"$or": unclaimed}]},
            {"$set": {"status": "applying", "claimed_at": stamp(now)}},
        )
        if claimed is None:
            raise await self._not_applicable(doc_id, plan_id, now)
        removals = [
            Removal(m["member_id"], group_id, m["kept"]["group_id"])
            for m in claimed["members"]
            for group_id in m["removals"]
        ]
        pairs = {(r.group_id, r.member_id) for r in removals}
        pairs |= {(r.kept_group_id, r.member_id) for r in removals}
        group_ids = sorted({group_doc_id(tenant_id, g) for g, _ in pairs})
        member_ids = sorted({member_doc_id(tenant_id, g, m) for g, m in pairs})
        groups = await self.store[GROUPS].find({"_id": {"$in": group_ids}}).to_list(None)
        members = await self.store[MEMBERS].find({"_id": {"$in": member_ids}}).to_list(None)
        current = {(m.group_id, m.member_id): m for m in _memberships(members, groups)}
        due, skipped = recheck(removals, current)
        await self.moderation.publish(
            rulings(
                due,
                tenant_id=tenant_id,
                plan_id=plan_id,
                series=claimed["series"],
                platforms={
                    g["group_id"]: common_pb2.Platform.Value(g.get("platform", "PLATFORM_SIM"))
                    for g in groups
                },
                names={g["group_id"]: g.get("name", "") for g in groups},
                at=now,
            )
        )
        outcome = {
            "kicks": [
                {
                    "member_id": r.member_id,
                    "group_id": r.group_id,
                    "action_id": action_id(plan_id, r),
                }
                for r in due
            ],
            "skipped": [
                {"member_id": r.member_id, "group_id": r.group_id, "reason": reason}
                for r, reason in skipped
            ],
        }
        applied = {
            "status": "applied",
            "applied_at": stamp(datetime.now(UTC)),
            "applied_by": principal.key_name,
            "outcome": outcome,
        }
        await self.store[PLANS].update_one({"_id": doc_id}, {"$set": applied})
        return _shown_plan({**claimed, **applied})

    async def _not_applicable(
        self, doc_id: str, plan_id: str, now: datetime
    ) -> NotFound | Conflict:
        doc = await self.store[PLANS].find_one({"_id": doc_id})
        if doc is None:
            return NotFound(f"no dedupe plan {plan_id}")
        if doc["status"] == "applied":
            return Conflict(f"plan {plan_id} was applied at {_iso(doc['applied_at'])}")
        if doc["expires_at"] <= stamp(now):
            return Conflict(f"plan {plan_id} expired at {_iso(doc['expires_at'])}; make a new one")
        return Conflict(
            f"plan {plan_id} is being applied; if that was interrupted, apply it again after"
            f" {APPLY_LEASE.seconds} s"
        )
