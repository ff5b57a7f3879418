"""The checks a message goes through, as a list of small named checks over one request: what
the message says (every content check of the ruleset in one pass), how often its member posts
(flood), whether a newcomer posts links or ads (probation), and whether the same text went to
other groups (cross-group). `check(request)` asks each in turn and returns a verdict with every
answer, and with the checks the member is exempt from. Plain code: the edge loads the state
(`CheckRequest`) and the flood windows are the only memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.moderation.detect.behaviour import FloodWatch, cross_group, probation
from services.moderation.detect.content import AD_CHECKS, Answer, ContentChecks, Message
from services.moderation.detect.ruleset import Ruleset
from services.moderation.detect.verdict import Verdict
from services.moderation.judge import MemberState

# What owners and admins may post by default (Ruleset.content_exempt_roles); abuse is never theirs.
CONTENT_EXEMPTIONS = AD_CHECKS | {"banned_keyword"}


@dataclass(frozen=True)
class CheckRequest:
    """One message to judge, with everything its checks need."""

    group: str  # "{tenant}:{group}", the flood windows' scope
    event_id: str
    at: datetime  # when it was posted (the event's own time)
    message: Message
    member_id: str
    member: MemberState
    ruleset: Ruleset
    content: ContentChecks  # the ruleset's compiled content checks
    groups_with_same_text: int  # of the tenant's groups, within the cross-group window
    flood: FloodWatch


def exempt(ruleset: Ruleset, member: MemberState) -> bool:
    """Exempt from the behaviour checks (flood, probation, cross-group): an admin's
    announcement is the same text in every group by design (群发)."""
    return member.role in ruleset.exempt_roles or any(t in ruleset.exempt_tags for t in member.tags)


@dataclass(frozen=True)
class Check:
    """A named check: its answers to a request, given the answers of the checks before it, and
    which of its answers the member is exempt from."""

    name: str
    answers: Callable[[CheckRequest, list[Answer]], list[Answer]]
    exempts: Callable[[CheckRequest, Answer], bool]


def _content(request: CheckRequest, _: list[Answer]) -> list[Answer]:
    return request.content.check(request.message)


def _content_exempt(request: CheckRequest, answer: Answer) -> bool:
    return (
        answer.check in CONTENT_EXEMPTIONS
        and request.member.role in request.ruleset.content_exempt_roles
    )


def _flood(request: CheckRequest, _: list[Answer]) -> list[Answer]:
    # Observed whoever posts: the windows count every message of the group.
    text, rule = request.message.text, request.ruleset.flood
    seen = request.flood.observe(
        request.group, request.member_id, request.event_id, request.at, text, rule
    )
    return [seen]


def _probation(request: CheckRequest, before: list[Answer]) -> list[Answer]:
    minutes = request.ruleset.probation_minutes
    return [probation(request.member.joined_at, request.at, minutes, before)]


def _cross_group(request: CheckRequest, _: list[Answer]) -> list[Answer]:
    rule = request.ruleset.cross_group
    return [cross_group(request.groups_with_same_text, rule, request.message.text)]


def _behaviour_exempt(request: CheckRequest, _: Answer) -> bool:
    return exempt(request.ruleset, request.member)


CHECKS = (
    Check("content", _content, _content_exempt),
    Check("flood", _flood, _behaviour_exempt),
    Check("probation", _probation, _behaviour_exempt),  # after content: it reads its ad answers
    Check("cross_group", _cross_group, _behaviour_exempt),
)


def check(request: CheckRequest, checks: tuple[Check, ...] = CHECKS) -> Verdict:
    """Every check's answer on the message; answers the member is exempt from are left out and
    named as skipped."""
    answers: list[Answer] = []
    skipped: list[str] = []
    for each in checks:
        for answer in each.answers(request, answers):
            if each.exempts(request, answer):
                skipped.append(answer.check)
            else:
                answers.append(answer)
    return Verdict(tuple(answers), tuple(skipped))
