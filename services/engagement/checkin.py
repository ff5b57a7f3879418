"""Check-in (打卡签到), pure: which messages are check-ins, and what one does to a member's
record: once a day per member per tenant, the day in the tenant's time zone, a streak of days in
a row, a bonus on every `streak_days`-th day of a streak, and the reply that says so."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

# What may surround the keyword: people write "签到!", " 打卡 ", "签到～".
_AROUND = " \t\r\n!！。.~～、,，"


class CheckinRules(BaseModel):
    keywords: list[str] = Field(
        default_factory=lambda: ["签到", "打卡"], min_length=1, max_length=10
    )
    points: int = Field(10, ge=0, le=10_000, description="points a check-in gives")
    streak_bonus: int = Field(20, ge=0, le=100_000, description="more on each streak_days-th day")
    streak_days: int = Field(7, ge=1, le=365)


def is_checkin(text: str, rules: CheckinRules) -> bool:
    """The whole message is a keyword (letters compared without case)."""
    said = text.strip(_AROUND).casefold()
    return any(said == k.strip(_AROUND).casefold() for k in rules.keywords)


def day_of(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


@dataclass(frozen=True)
class Record:
    """A member's check-ins in the tenant, as stored (`last_event`: the check-in that made it)."""

    last_day: date | None = None
    streak: int = 0
    total: int = 0
    last_event: str = ""


@dataclass(frozen=True)
class Outcome:
    """What a check-in message does: `new` (recorded now), `again` (the message that made the
    record, delivered again: its reward and reply are given again, which books and sends
    nothing twice), `already` (checked in earlier that day) or `late` (a day before the last
    one: changes nothing, says nothing)."""

    kind: str
    record: Record
    points: int = 0


def check_in(record: Record, day: date, event_id: str, rules: CheckinRules) -> Outcome:
    if record.last_day == day:
        if record.last_event == event_id:
            return Outcome("again", record, _points(record.streak, rules))
        return Outcome("already", record)
    if record.last_day is not None and day < record.last_day:
        return Outcome("late", record)
    streak = record.streak + 1 if record.last_day == day - timedelta(days=1) else 1
    after = replace(
        record, last_day=day, streak=streak, total=record.total + 1, last_event=event_id
    )
    return Outcome("new", after, _points(streak, rules))


def _points(streak: int, rules: CheckinRules) -> int:
    return rules.points + (rules.streak_bonus if streak % rules.streak_days == 0 else 0)


def reply(name: str, outcome: Outcome, balance: int) -> str | None:
    r = outcome.record
    if outcome.kind in ("new", "again"):
        return (
            f"{name} 签到成功！连续签到 {r.streak} 天，累计 {r.total} 天，"
            f"获得 {outcome.points} 积分，当前积分 {balance}。"
        )
    if outcome.kind == "already":
        return f"{name} 今天已经签到过了，明天再来吧～（连续 {r.streak} 天，累计 {r.total} 天）"
    return None
