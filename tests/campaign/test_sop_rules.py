"""SOP without I/O: slots of a cron rule in the tenant's time zone, late slots fired within the
grace window and missed after it, the catch-up bounded, texts per group."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.campaign.sop import MAX_CATCH_UP, Schedule, due, rendered, slots_after

SHANGHAI = ZoneInfo("Asia/Shanghai")
MORNING = Schedule(name="早安", cron="30 7 * * *", tag="vip", text="{group_name} 早上好")


def test_slots_are_the_rules_instants_in_the_time_zone() -> None:
    after = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # 07:00 on the 2nd in Shanghai
    slots = slots_after(MORNING, after, SHANGHAI)
    first, second = next(slots), next(slots)
    assert first == datetime(2026, 12, 2, 7, 30, tzinfo=SHANGHAI)
    assert second - first == timedelta(days=1)
    utc = MORNING.model_copy(update={"timezone": "UTC"})
    assert next(slots_after(utc, after, SHANGHAI)) == datetime(2026, 12, 2, 7, 30, tzinfo=UTC)


def test_a_late_slot_fires_within_the_grace_and_is_missed_after_it() -> None:
    first = datetime(2026, 12, 2, 7, 30, tzinfo=SHANGHAI)
    grace = timedelta(minutes=10)
    found, following = due(MORNING, first, first + timedelta(minutes=5), grace, SHANGHAI)
    assert found == [(first, "fire")] and following == first + timedelta(days=1)
    three_days = first + timedelta(days=2, minutes=5)
    found, following = due(MORNING, first, three_days, grace, SHANGHAI)
    assert [fate for _, fate in found] == ["missed", "missed", "fire"]
    assert following == first + timedelta(days=3)
    assert due(MORNING, first, first - timedelta(seconds=1), grace, SHANGHAI)[0] == []


def test_the_catch_up_is_bounded() -> None:
    every_minute = MORNING.model_copy(update={"cron": "* * * * *"})
    first = datetime(2026, 12, 1, tzinfo=UTC)
    now = first + timedelta(days=1)
    found, following = due(every_minute, first, now, timedelta(minutes=10), SHANGHAI)
    assert len(found) == MAX_CATCH_UP and all(f == "missed" for _, f in found)
    assert now < following <= now + timedelta(minutes=1)


def test_a_schedule_is_checked_when_saved() -> None:
    with pytest.raises(ValidationError, match="not a cron rule"):
        Schedule(name="x", cron="61 * * * *", tag="t", text="x")
    with pytest.raises(ValidationError, match="not a time zone"):
        Schedule(name="x", cron="* * * * *", tag="t", text="x", timezone="Mars/Base")
    with pytest.raises(ValidationError, match="exactly one of groups, tag and owner"):
        Schedule(name="x", cron="* * * * *", text="x")
    assert rendered("{group_name} 早上好", "福利群") == "福利群 早上好"


def test_a_step_after_a_join_is_a_slot_every_day_at_its_time() -> None:
    step = Schedule.model_validate({
        "name": "x", "groups": ["g"], "text": "{members}",
        "after": {"event": "member_joined", "days": 3, "at": "10:00:05"},
    })  # fmt: skip
    zone = ZoneInfo("Asia/Shanghai")
    start = datetime(2026, 12, 1, 9, 0, tzinfo=zone)
    slots = slots_after(step, start, zone)
    first, second = next(slots), next(slots)
    assert (first, second - first) == (datetime(2026, 12, 1, 10, 0, 5, tzinfo=zone), timedelta(1))
    assert step.after is not None and step.after.anchored(first) == date(2026, 11, 28)
