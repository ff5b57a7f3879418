"""Group SOP (群SOP), pure: a schedule's rule in a time zone, its slots, and what becomes of a
slot found due: fired, or missed when found too late.

A slot is an instant the rule names: a cron rule's, or, for a step relative to a group's
creation or a member's join ("day 3 after joining, at 10:00"), that time of every day, when
the step reaches the groups created (the members who joined) that many days before. Each
(schedule, slot) is fired once for every group the schedule reaches then; a slot found after
the grace window (the service was down) is recorded as missed, not sent hours late."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import BaseModel, Field, field_validator, model_validator

from services.campaign.audience import Audience
from services.runtime.instants import TimeZoneName, zone_of

MAX_CATCH_UP = 100  # slots one sweep records for a schedule; the rest are skipped over


class Relative(BaseModel):
    """A step relative to each group's creation or each member's join."""

    event: Literal["group_created", "member_joined"]
    days: int = Field(ge=0, le=365, description="days after the creation or the join")
    at: time = Field(description="the time of day, in the schedule's time zone")

    def cron(self) -> str:
        """Every day at `at`: the slots the step may send at."""
        return f"{self.at.minute} {self.at.hour} * * * {self.at.second}"  # croniter: seconds last

    def anchored(self, slot: datetime) -> date:
        """The day of the creations (joins) a slot's step is for."""
        return slot.date() - timedelta(days=self.days)


class Schedule(Audience):
    name: str = Field(min_length=1, max_length=100)
    cron: str | None = Field(
        None,
        max_length=100,
        description='minute hour day month weekday ("30 7 * * *": 07:30 every day), and an'
        " optional sixth field for seconds",
    )
    after: Relative | None = Field(
        None, description="or: a step relative to each group's creation or member's join"
    )
    timezone: TimeZoneName = Field(None, description="IANA; none: the deployment's default")
    text: str = Field(
        min_length=1,
        max_length=2000,
        description="{group_name} is the group's name; {members}, in a step after a join, the"
        " members it is for (@mentioned)",
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and (len(value.split()) not in (5, 6) or not croniter.is_valid(value)):
            raise ValueError(f"not a cron rule: {value!r}")
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> Schedule:
        if (self.cron is None) == (self.after is None):
            raise ValueError("give exactly one of cron and after")
        return self

    def rule(self) -> str:
        """The cron rule of the schedule's slots."""
        if self.after is not None:
            return self.after.cron()
        assert self.cron is not None  # one of the two, always (_one_rule)
        return self.cron

    def zone(self, default: ZoneInfo) -> ZoneInfo:
        return zone_of(self.timezone, default)


def day_span(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A day of the zone as the instants [start, end)."""
    start = datetime.combine(day, time(), zone)
    return start, datetime.combine(day + timedelta(days=1), time(), zone)


def slots_after(schedule: Schedule, after: datetime, default: ZoneInfo) -> Iterator[datetime]:
    """The schedule's slots after `after`, in order (aware, in the schedule's zone)."""
    rule = croniter(schedule.rule(), after.astimezone(schedule.zone(default)))
    while True:
        yield rule.get_next(datetime)


def due(
    schedule: Schedule, first: datetime, now: datetime, grace: timedelta, default: ZoneInfo
) -> tuple[list[tuple[datetime, Literal["fire", "missed"]]], datetime]:
    """The slots from `first` (the schedule's next slot) up to `now`, each fired or missed, and
    the next slot after them."""
    found: list[tuple[datetime, Literal["fire", "missed"]]] = []
    slot, later = first, slots_after(schedule, first, default)
    while slot <= now and len(found) < MAX_CATCH_UP:
        found.append((slot, "fire" if now - slot <= grace else "missed"))
        slot = next(later)
    if slot <= now:  # beyond the catch-up: straight to the next one to come
        slot = next(slots_after(schedule, now, default))
    return found, slot


def rendered(text: str, group_name: str, members: str = "") -> str:
    return text.replace("{group_name}", group_name).replace("{members}", members)
