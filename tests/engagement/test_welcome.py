"""Welcome without I/O: which window a join belongs to, what a closed window sends, templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.engagement.welcome import (
    Head,
    Newcomer,
    WelcomeRules,
    place,
    wecom_template,
    welcomes,
)

T = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
MINUTE = timedelta(seconds=60)
RULES = WelcomeRules(template="欢迎 {nickname} 加入{group_name}！{rules}", rules="请勿发广告")


def s(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def test_joins_go_to_the_window_they_fall_in_whatever_their_order() -> None:
    assert place(None, s(10), MINUTE) == (s(10), True), "the first join opens a window"
    head = Head("w", s(10), s(70))
    assert place(head, s(69), MINUTE) == (s(10), False)
    assert place(head, s(0), MINUTE) == (s(10), False), "a little earlier, out of order"
    assert place(head, s(70), MINUTE) == (s(70), True), "the next window"
    assert place(head, s(-120), MINUTE) == (s(-120), False), "from before: a window of its own"
    assert place(head, s(30), timedelta(0)) == (s(10), False)
    assert place(Head("w", s(10), s(10)), s(10), timedelta(0)) == (s(10), True)


def newcomer(member: str, at: float, name: str = "") -> Newcomer:
    return Newcomer(member, name or f"用户{member}", f"ev-{member}-{at}", s(at))


def test_three_newcomers_get_one_welcome_naming_them_all() -> None:
    joins = [newcomer("b", 5), newcomer("a", 1), newcomer("c", 30), newcomer("a", 1)]
    [welcome] = welcomes("w1", joins, {}, RULES, "福利群")
    assert welcome.text == "欢迎 用户a、用户b、用户c 加入福利群！请勿发广告"
    assert welcome.mentions == ("a", "b", "c") and welcome.key == "w1"
    assert welcome.cause_event_id == "ev-a-1"


def test_fewer_newcomers_get_one_welcome_each_and_the_removed_none() -> None:
    joins = [newcomer("a", 1), newcomer("b", 5), newcomer("c", 6)]
    found = welcomes("w1", joins, {"c": s(6)}, RULES, "福利群", notice="群公告")
    assert [(w.key, w.mentions) for w in found] == [("w1:a", ("a",)), ("w1:b", ("b",))]
    rejoined = welcomes("w1", [newcomer("a", 1), newcomer("a", 40)], {"a": s(20)}, RULES, "群")
    assert [w.key for w in rejoined] == ["w1:a"], "left, then came back: welcomed once"
    assert welcomes("w1", [newcomer("a", 1)], {"a": s(1)}, RULES, "群") == []


def test_the_group_notice_stands_in_for_rules_not_set() -> None:
    rules = WelcomeRules(template="{nickname}，欢迎！{rules} {campaign_link}")
    [welcome] = welcomes("w", [newcomer("a", 0, "小明")], {}, rules, "群", notice="群规见公告")
    assert welcome.text == "小明，欢迎！群规见公告"


def test_many_newcomers_are_named_up_to_twenty() -> None:
    joins = [newcomer(f"m{i:02}", i) for i in range(25)]
    [welcome] = welcomes("w", joins, {}, RULES, "群")
    assert "等 25 位新朋友" in welcome.text and len(welcome.mentions) == 25


def test_templates_may_use_only_the_known_placeholders() -> None:
    with pytest.raises(ValidationError, match=r"unknown placeholder \{name\}"):
        WelcomeRules(template="欢迎 {name}")
    with pytest.raises(ValidationError, match="not a template"):
        WelcomeRules(template="欢迎 {nickname")


def test_a_wecom_group_shares_the_tenants_template_only_when_its_welcome_reads_the_same() -> None:
    plain = WelcomeRules(template="欢迎 {nickname}！{rules}", rules="请勿发广告")
    assert wecom_template(plain, plain, "福利群", "") == ("欢迎 %NICKNAME%！请勿发广告", True)
    named = WelcomeRules(template="欢迎 {nickname} 加入{group_name}")
    assert wecom_template(named, named, "福利群", "") == ("欢迎 %NICKNAME% 加入福利群", False)
    by_notice = WelcomeRules(template="欢迎 {nickname}！{rules}")
    assert wecom_template(by_notice, by_notice, "群", "群规见公告")[1] is False
    overridden = WelcomeRules(template="欢迎 {nickname}，VIP 群")
    assert wecom_template(plain, overridden, "群", "") == ("欢迎 %NICKNAME%，VIP 群", False)
