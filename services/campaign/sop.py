"""Group SOP (群SOP), pure: a schedule's cron rule in a time zone, its slots, and what becomes
of a slot found due: fired, or missed when found too late.

A slot is an instant the rule names. Each (schedule, slot) is fired once for every group the
schedule reaches then; a slot found after the grace window (the service was down) is recorded
as missed, not sent hours late."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import Field, field_validator

from services.campaign.audience import Audience
from services.runtime.instants import TimeZoneName, zone_of

MAX_CATCH_UP = 100  # slots one sweep records for a schedule; the rest are skipped over


class Schedule(Audience):
    name: str = Field(min_length=1, max_length=100)
    cron: str = Field(
        max_length=100,
        description='minute hour day month weekday ("30 7 * * *": 07:30 every day), and an'
        " optional sixth field for seconds",
    )
    timezone: TimeZoneName = Field(None, description="IANA; none: the deployment's default")
    text: str = Field(min_length=1, max_length=2000, description="{group_name} is the group's name")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if len(value.split()) not in (5, 6) or not croniter.is_valid(value):
            raise ValueError(f"not a cron rule: {value!r}")
        return value

    def zone(self, default: ZoneInfo) -> ZoneInfo:
        return zone_of(self.timezone, default)


def slots_after(schedule: Schedule, after: datetime, default: ZoneInfo) -> Iterator[datetime]:
    """The schedule's slots after `after`, in order (aware, in the schedule's zone)."""
    rule = croniter(schedule.cron, after.astimezone(schedule.zone(default)))
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


def rendered(text: str, group_name: str) -> str:
    return text.replace("{group_name}", group_name)
