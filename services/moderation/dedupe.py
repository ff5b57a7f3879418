"""Member dedupe (群成员去重), pure: who is in several groups of one series (groups that share a
tag), which membership each keeps, and the decisions and kicks that remove the others. The
service's edge (operations.py) reads the memberships, stores the plan and publishes what this
returns.

Ids follow from the plan, the group and the member, so applying a plan again after an
interruption produces the same kicks, which delivery does not repeat."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from services.gen.shequn.v1 import common_pb2, decisions_pb2
from services.moderation.judge import RULE_NAMES, Ruling
from services.runtime.envelope import new_action

RULE = "dedupe"
STAFF = ("owner", "admin")  # never removed from the group they run
KICK_REASON = "{rule}（保留在「{kept}」）"


@dataclass(frozen=True)
class Membership:
    """A member in one group of the series, as moderation has it on record."""

    group_id: str
    member_id: str
    joined_at: datetime
    role: str = "member"  # owner | admin | member


@dataclass(frozen=True)
class Skip:
    """A group the member stays in although the membership is not the one kept."""

    group_id: str
    reason: str  # owner | admin


@dataclass(frozen=True)
class MemberPlan:
    """One member in two or more groups of the series: the membership kept, the groups the
    member is to be removed from, and the groups where the member stays although not kept."""

    member_id: str
    kept: Membership
    removals: tuple[str, ...]
    skipped: tuple[Skip, ...]


@dataclass(frozen=True)
class Removal:
    member_id: str
    group_id: str
    kept_group_id: str


def plan(memberships: Iterable[Membership]) -> list[MemberPlan]:
    """For each member in two or more of the groups: the oldest membership is kept (earliest
    join; on a tie the smallest group id, so that the same state gives the same plan) and the
    others are removed, except where the member is the group's owner or an admin."""
    by_member: defaultdict[str, list[Membership]] = defaultdict(list)
    for membership in memberships:
        by_member[membership.member_id].append(membership)
    plans = []
    for member_id, found in sorted(by_member.items()):
        if len(found) < 2:
            continue
        kept, *others = sorted(found, key=lambda m: (m.joined_at, m.group_id))
        plans.append(
            MemberPlan(
                member_id,
                kept,
                tuple(m.group_id for m in others if m.role not in STAFF),
                tuple(Skip(m.group_id, m.role) for m in others if m.role in STAFF),
            )
        )
    return plans


def recheck(
    removals: Iterable[Removal], current: Mapping[tuple[str, str], Membership]
) -> tuple[list[Removal], list[tuple[Removal, str]]]:
    """(removals still to make, the others with why) against the memberships of now, keyed
    (group, member): a member who has left the group needs no kick; one who has left the group
    kept would be left in none of the series; one who has become owner or admin stays."""
    due, skipped = [], []
    for removal in removals:
        there = current.get((removal.group_id, removal.member_id))
        if there is None:
            skipped.append((removal, "left"))
        elif (removal.kept_group_id, removal.member_id) not in current:
            skipped.append((removal, "kept_group_left"))
        elif there.role in STAFF:
            skipped.append((removal, there.role))
        else:
            due.append(removal)
    return due, skipped


def action_id(plan_id: str, removal: Removal) -> str:
    return f"moderation:dedupe:{plan_id}:{removal.group_id}:{removal.member_id}"


def rulings(
    removals: Iterable[Removal],
    *,
    tenant_id: str,
    plan_id: str,
    series: str,
    platforms: Mapping[str, common_pb2.Platform.ValueType],
    names: Mapping[str, str],
    at: datetime,
) -> list[Ruling]:
    """A decision (rule `dedupe`, no blacklist) and a kick for each removal; the kick's reason
    names the group the member stays in, for the timeline."""
    found = []
    for removal in removals:
        group_id, member_id = removal.group_id, removal.member_id
        kept = names.get(removal.kept_group_id) or removal.kept_group_id
        decision = decisions_pb2.Decision(
            decision_id=f"{RULE}:{plan_id}:{group_id}:{member_id}", tenant_id=tenant_id,
            group_id=group_id, member_id=member_id, rule=RULE, check="series",
            evidence=f"{series}: kept in {removal.kept_group_id}", span_start=-1, span_end=-1,
            penalty=decisions_pb2.Decision.PENALTY_KICK, blacklisted=False,
            explanation_json=json.dumps(
                {"plan_id": plan_id, "series": series, "kept_group_id": removal.kept_group_id}
            ),
        )  # fmt: skip
        decision.decided_at.FromDatetime(at)
        platform = platforms.get(group_id, common_pb2.PLATFORM_SIM)
        kick = new_action(
            action_id(plan_id, removal), tenant_id, group_id, platform, "moderation", at=at
        )
        kick.kick_member.member_id = member_id
        kick.kick_member.reason = KICK_REASON.format(rule=RULE_NAMES[RULE], kept=kept)
        found.append(Ruling(decision, [kick]))
    return found
