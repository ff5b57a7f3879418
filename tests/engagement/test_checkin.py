"""Check-in rules, without I/O: which messages count, the tenant's day, streaks and bonuses."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from services.engagement.checkin import CheckinRules, Record, check_in, day_of, is_checkin, reply

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = CheckinRules()


def test_only_a_message_that_is_a_keyword_is_a_check_in() -> None:
    for text in ("签到", "打卡", " 签到！", "打卡～", "签到。"):
        assert is_checkin(text, RULES), text
    for text in ("我签到了", "签到签到", "", "签 到"):
        assert not is_checkin(text, RULES), text
    assert is_checkin("Check in!", CheckinRules(keywords=["check in"]))


def test_23_59_and_00_01_in_shanghai_are_two_days_and_a_streak() -> None:
    before = datetime(2026, 11, 30, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    after = datetime(2026, 11, 30, 16, 1, tzinfo=UTC)  # 00:01 the next day there
    assert day_of(before, SHANGHAI) == date(2026, 11, 30)
    assert day_of(after, SHANGHAI) == date(2026, 12, 1)
    first = check_in(Record(), day_of(before, SHANGHAI), "e1", RULES)
    second = check_in(first.record, day_of(after, SHANGHAI), "e2", RULES)
    assert (first.kind, second.kind) == ("new", "new")
    assert (second.record.streak, second.record.total) == (2, 2)
    assert day_of(before, ZoneInfo("UTC")) == day_of(after, ZoneInfo("UTC")), "one day in UTC"


def test_once_a_day_and_the_same_message_again_gives_the_same() -> None:
    day = date(2026, 12, 1)
    first = check_in(Record(), day, "e1", RULES)
    assert (first.kind, first.points) == ("new", 10)
    assert check_in(first.record, day, "e2", RULES).kind == "already"
    again = check_in(first.record, day, "e1", RULES)
    assert (again.kind, again.points, again.record) == ("again", 10, first.record)
    late = check_in(first.record, date(2026, 11, 29), "e0", RULES)
    assert (late.kind, late.record) == ("late", first.record)


def test_a_missed_day_starts_the_streak_again_and_every_seventh_day_has_the_bonus() -> None:
    record, points = Record(), list[int]()
    for n in range(8):
        outcome = check_in(record, date(2026, 12, 1 + n), f"e{n}", RULES)
        record = outcome.record
        points.append(outcome.points)
    assert points == [10] * 6 + [30, 10]
    broken = check_in(record, date(2026, 12, 10), "e-later", RULES)
    assert (broken.record.streak, broken.record.total) == (1, 9)


def test_the_reply_says_streak_total_and_points() -> None:
    outcome = check_in(Record(date(2026, 11, 30), 2, 5, "e0"), date(2026, 12, 1), "e1", RULES)
    text = reply("小明", outcome, 120)
    assert text == "小明 签到成功！连续签到 3 天，累计 6 天，获得 10 积分，当前积分 120。"
    already = reply("小明", check_in(outcome.record, date(2026, 12, 1), "e2", RULES), 120)
    assert already is not None and "已经签到" in already and "连续 3 天" in already
    assert reply("小明", check_in(outcome.record, date(2026, 11, 1), "e3", RULES), 0) is None
