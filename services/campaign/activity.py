"""Short-term activity groups (短期活动群), pure: a group made for one activity, with its end
date. On the end day, at `at`, a wrap-up message; `dismiss_after_days` later, at the same time,
a farewell and the group dismissed. Each step has its instant; a step found late (the service
was down) still runs, except a wrap-up more than `WRAP_UP_LATE` late, which would read wrong."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from services.runtime.instants import TimeZoneName, zone_of

Step = Literal["wrap_up", "dismiss"]
WRAP_UP_LATE = timedelta(hours=12)


class ActivityGroup(BaseModel):
    ends_on: date = Field(description="the activity's last day (YYYY-MM-DD)")
    at: time = Field(time(20, 0), description="the time of day of the wrap-up and the farewell")
    timezone: TimeZoneName = Field(None, description="IANA; none: the deployment's default")
    wrap_up: str = Field(
        "本次活动今天圆满结束，感谢大家的参与！", min_length=1, max_length=2000,
        description="sent on the end day",
    )  # fmt: skip
    farewell: str = Field(
        "活动群即将解散，感谢大家的陪伴，我们下次活动再见！", min_length=1, max_length=2000,
        description="sent before the group is dismissed",
    )  # fmt: skip
    dismiss_after_days: int | None = Field(
        None, ge=0, le=90, description="days after the end day; none: the deployment's default (3)"
    )

    def steps(self, default_zone: ZoneInfo, default_days: int) -> list[tuple[Step, datetime]]:
        """The steps and their instants, in order."""
        zone = zone_of(self.timezone, default_zone)
        wrap_up = datetime.combine(self.ends_on, self.at.replace(tzinfo=None), zone)
        days = default_days if self.dismiss_after_days is None else self.dismiss_after_days
        return [("wrap_up", wrap_up), ("dismiss", wrap_up + timedelta(days=days))]


def due(
    steps: list[tuple[Step, datetime]], done: list[str], now: datetime
) -> tuple[list[tuple[Step, bool]], datetime | None]:
    """The steps to take now, each with whether it is still worth taking (a wrap-up too late is
    not), and when the next step after them is due (None: none left)."""
    taken: list[tuple[Step, bool]] = []
    for step, at in steps:
        if step in done:
            continue
        if at > now:
            return taken, at
        taken.append((step, step != "wrap_up" or now - at <= WRAP_UP_LATE))
    return taken, None
