"""An activity group's steps (`activity.py`): their instants in the group's time zone, and
which are due, table driven."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.campaign.activity import ActivityGroup, due

SHANGHAI = ZoneInfo("Asia/Shanghai")
GROUP = ActivityGroup(ends_on=date(2026, 12, 20))
STEPS = GROUP.steps(SHANGHAI, 3)
WRAP, DISMISS = STEPS[0][1], STEPS[1][1]


def test_the_steps_are_at_eight_in_the_evening_of_the_end_day_and_three_days_later() -> None:
    assert datetime(2026, 12, 20, 12, 0, tzinfo=UTC) == WRAP  # 20:00 in Shanghai
    assert timedelta(days=3) == DISMISS - WRAP
    utc = ActivityGroup(ends_on=date(2026, 12, 20), timezone="UTC", dismiss_after_days=0)
    assert [at for _, at in utc.steps(SHANGHAI, 3)] == [datetime(2026, 12, 20, 20, tzinfo=UTC)] * 2


@pytest.mark.parametrize(
    ("now", "done", "taken", "next_at"),
    [
        (WRAP - timedelta(seconds=1), [], [], WRAP),
        (WRAP, [], [("wrap_up", True)], DISMISS),
        (WRAP + timedelta(hours=13), [], [("wrap_up", False)], DISMISS),
        (DISMISS, [], [("wrap_up", False), ("dismiss", True)], None),
        (DISMISS, ["wrap_up"], [("dismiss", True)], None),
        (DISMISS, ["wrap_up", "dismiss"], [], None),
    ],
)
def test_which_steps_are_due(
    now: datetime, done: list[str], taken: list[tuple[str, bool]], next_at: datetime | None
) -> None:
    assert due(STEPS, done, now) == (taken, next_at)
