"""The list of checks a message goes through, without I/O: every check answers, exemptions are
named, and the flood windows count an exempt member's messages too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.moderation.checks import CHECKS, CheckRequest, check
from services.moderation.detect.behaviour import FloodWatch
from services.moderation.detect.content import ContentChecks, Message
from services.moderation.detect.ruleset import Ruleset
from services.moderation.judge import MemberState

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
AD = "加微信 vx: shop_8888 领福利"


def _request(
    text: str,
    member: MemberState,
    ruleset: Ruleset | None = None,
    *,
    n: int = 0,
    flood: FloodWatch | None = None,
    groups: int = 0,
) -> CheckRequest:
    ruleset = ruleset or Ruleset()
    return CheckRequest(
        group="t:g", event_id=f"e-{n}", at=T0 + timedelta(seconds=n), message=Message(text),
        member_id="m", member=member, ruleset=ruleset, content=ContentChecks(ruleset),
        groups_with_same_text=groups, flood=FloodWatch() if flood is None else flood,
    )  # fmt: skip


def test_every_check_answers_in_order() -> None:
    newcomer = MemberState(joined_at=T0 - timedelta(minutes=2))
    verdict = check(_request(AD, newcomer, groups=3))
    names = [a.check for a in verdict.answers]
    assert names[-3:] == ["flood", "probation", "cross_group"]
    assert {"wechat_id", "ad_phrase", "banned_keyword", "abuse"} <= set(names)
    hits = {a.check for a in verdict.answers if a.hit}
    assert {"wechat_id", "probation", "cross_group"} <= hits
    assert verdict.exempt == ()
    assert [c.name for c in CHECKS] == ["content", "flood", "probation", "cross_group"]


def test_exemptions_are_named_and_probation_sees_only_what_applies() -> None:
    admin = MemberState(role="admin", joined_at=T0 - timedelta(minutes=2))
    verdict = check(_request(AD, admin))
    assert verdict.violation is None, "an admin may post an ad by default"
    assert {"wechat_id", "flood", "probation", "cross_group"} <= set(verdict.exempt)
    assert "abuse" in {a.check for a in verdict.answers}, "abuse is never exempt"
    strict = Ruleset.model_validate({"content_exempt_roles": [], "exempt_roles": []})
    held = check(_request(AD, admin, strict))
    assert held.violation is not None and held.exempt == ()


def test_an_exempt_members_messages_still_fill_the_flood_window() -> None:
    flood = FloodWatch()
    kol = MemberState(tags=("kol",))
    for n in range(6):
        assert check(_request(f"消息 {n}", kol, n=n, flood=flood)).violation is None
    assert len(flood) == 1, "observed although exempt"
