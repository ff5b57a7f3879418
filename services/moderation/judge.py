"""Decisions (判定): what a message, a join or a rename means under a group's ruleset, and what
to do about it — pure functions over protobuf messages and plain state. The service's edge
loads the state, calls these and writes and produces what they return.

Action ids follow from the event and the penalty, so that judging a redelivered event again
produces the same actions, which delivery answers from its ledger instead of acting twice."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from services.gen.shequn.v1 import actions_pb2, common_pb2, decisions_pb2, events_pb2
from services.moderation.detect.content import Finding
from services.moderation.detect.ruleset import Ruleset
from services.moderation.detect.verdict import Verdict
from services.runtime.envelope import answer
from services.runtime.wellformed import shortened

Penalty = decisions_pb2.Decision.Penalty
EVIDENCE_KEPT = 1000  # characters of what broke the rule, in the decision (a message may be long)
NAME_SHOWN = 64  # characters of a member's name in a notice (Telegram's own limit)

RULE_NAMES = {
    "keyword": "禁止发布违禁内容",
    "abuse": "禁止辱骂他人",
    "ad": "禁止发广告、留联系方式",
    "flood": "禁止刷屏",
    "cross_group": "禁止跨群刷屏",
    "probation": "新人入群10分钟内禁止发链接和广告",
    "invite_policy": "只有群管理员可以拉人进群",
    "rename_lock": "只有群管理员可以修改群名",
    "blacklist": "黑名单成员不能入群",
    "dedupe": "同一系列群只保留一个",
}
WARNING = "@{name} 请遵守群规：{rule}。这是第一次提醒，再次违规将被移出本群。"
KICKED = "{name} 多次违反群规（{rule}），已被移出群聊。"
INVITE_WARNING = "@{name} 请遵守群规：{rule}。你邀请的成员已被移出。"
_ROLES = {
    common_pb2.GROUP_ROLE_OWNER: "owner",
    common_pb2.GROUP_ROLE_ADMIN: "admin",
    common_pb2.GROUP_ROLE_MEMBER: "member",
}


@dataclass(frozen=True, slots=True)
class MemberState:
    """What moderation knows of a member in a group."""

    role: str = "member"  # owner | admin | member
    tags: tuple[str, ...] = ()
    joined_at: datetime | None = None


@dataclass
class Ruling:
    """One decision and the actions it takes."""

    decision: decisions_pb2.Decision
    actions: list[actions_pb2.Action] = field(default_factory=list)


def _name(member: common_pb2.Member) -> str:
    return shortened(member.name or member.id, NAME_SHOWN)


def role_of(member: common_pb2.Member, known: MemberState | None) -> str:
    """The role an event states, else the one moderation has on record."""
    stated = _ROLES.get(member.role)
    if stated and stated != "member":
        return stated
    return known.role if known else (stated or "member")


def _decision(
    event: events_pb2.Event, member_id: str, rule: str, finding: Finding | None, at: datetime
) -> decisions_pb2.Decision:
    decision = decisions_pb2.Decision(
        decision_id=f"{event.event_id}:{rule}",
        tenant_id=event.tenant_id,
        group_id=event.group_id,
        member_id=member_id,
        event_id=event.event_id,
        rule=rule,
        check=finding.check if finding else rule,
        evidence=shortened(finding.evidence, EVIDENCE_KEPT) if finding else "",
        span_start=finding.span[0] if finding and finding.span else -1,
        span_end=finding.span[1] if finding and finding.span else -1,
    )
    decision.decided_at.FromDatetime(at)
    decision.event_occurred_at.CopyFrom(event.occurred_at)
    return decision


def _action(event: events_pb2.Event, kind: str, at: datetime) -> actions_pb2.Action:
    return answer(event, "moderation", kind, at)


def _warn(
    event: events_pb2.Event, member: common_pb2.Member, text: str, at: datetime
) -> actions_pb2.Action:
    action = _action(event, f"warn:{member.id}", at)
    action.send_text.text = text.format(name=_name(member))
    action.send_text.mentions.append(member.id)
    return action


def _kick(event: events_pb2.Event, member_id: str, reason: str, at: datetime) -> actions_pb2.Action:
    action = _action(event, f"kick:{member_id}", at)
    action.kick_member.member_id, action.kick_member.reason = member_id, reason
    return action


def rule_message(
    event: events_pb2.Event,
    ruleset: Ruleset,
    verdict: Verdict,
    violations_before: int,
    at: datetime,
) -> Ruling | None:
    """The penalty ladder: the first violation in the window deletes the message where the
    platform can and warns; the `kick_at`-th kicks and blacklists."""
    finding = verdict.violation
    if finding is None:
        return None
    posted = event.message_posted
    number = violations_before + 1
    decision = _decision(event, posted.member.id, finding.rule, finding, at)
    decision.violation_number = number
    decision.explanation_json = json.dumps(
        {"checks": verdict.explain(), "exempt": list(verdict.exempt)}, ensure_ascii=False
    )
    ruling = Ruling(decision)
    rule = RULE_NAMES.get(finding.rule, finding.rule)
    penalties = ruleset.penalties
    if (
        posted.message.id
        and penalties.delete_message
        and event.platform != common_pb2.PLATFORM_WECOM
    ):
        delete = _action(event, "delete", at)
        delete.delete_message.message_id = posted.message.id
        ruling.actions.append(delete)
    if number >= penalties.kick_at:
        decision.penalty = Penalty.PENALTY_KICK
        decision.blacklisted = ruleset.blacklist
        ruling.actions.append(_kick(event, posted.member.id, rule, at))
        notice = _action(event, "kicked", at)
        notice.send_text.text = KICKED.format(name=_name(posted.member), rule=rule)
        ruling.actions.append(notice)
    elif penalties.warn:
        decision.penalty = Penalty.PENALTY_WARN
        ruling.actions.append(_warn(event, posted.member, WARNING.replace("{rule}", rule), at))
    else:
        decision.penalty = Penalty.PENALTY_NONE
    return ruling


def rule_join(
    event: events_pb2.Event,
    ruleset: Ruleset,
    blacklisted: bool,
    inviter: MemberState | None,
    at: datetime,
) -> Ruling | None:
    """A blacklisted member is removed at once; with the invite policy on, a member invited by
    a non-admin is removed and the inviter warned (非管理员拉人者踢)."""
    joined = event.member_joined
    if blacklisted and ruleset.blacklist:
        decision = _decision(event, joined.member.id, "blacklist", None, at)
        decision.penalty, decision.blacklisted = Penalty.PENALTY_KICK, True
        return Ruling(decision, [_kick(event, joined.member.id, RULE_NAMES["blacklist"], at)])
    invited_by_member = (
        joined.scene == events_pb2.JOIN_SCENE_INVITE
        and joined.inviter.id
        and role_of(joined.inviter, inviter) == "member"
    )
    if ruleset.invite_policy and invited_by_member:
        decision = _decision(event, joined.member.id, "invite_policy", None, at)
        decision.evidence = f"invited by {joined.inviter.id}"
        decision.penalty = Penalty.PENALTY_KICK
        warning = INVITE_WARNING.replace("{rule}", RULE_NAMES["invite_policy"])
        return Ruling(
            decision,
            [
                _kick(event, joined.member.id, RULE_NAMES["invite_policy"], at),
                _warn(event, joined.inviter, warning, at),
            ],
        )
    return None


def rule_rename(
    event: events_pb2.Event,
    ruleset: Ruleset,
    actor: MemberState | None,
    previous_name: str,
    at: datetime,
) -> Ruling | None:
    """With the rename lock on, a name change by a non-admin is changed back."""
    updated = event.group_updated
    if not ruleset.rename_lock or events_pb2.GROUP_CHANGE_NAME not in updated.changes:
        return None
    if not updated.actor.id or role_of(updated.actor, actor) != "member" or not previous_name:
        return None
    if updated.group.name == previous_name:
        return None
    decision = _decision(event, updated.actor.id, "rename_lock", None, at)
    decision.evidence = shortened(updated.group.name, EVIDENCE_KEPT)
    decision.penalty = Penalty.PENALTY_REVERT
    revert = _action(event, "revert", at)
    revert.rename_group.name = previous_name
    return Ruling(decision, [revert])
