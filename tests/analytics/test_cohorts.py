"""Cohort arithmetic on hand-checked memberships: which join a message or a leave belongs to,
and what it adds to that join's day."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services.analytics.cohorts import Joining, cohort_shares, membership
from services.gen.shequn.v1 import events_pb2
from services.runtime.instants import stamp

SHANGHAI = ZoneInfo("Asia/Shanghai")
JOINED = Joining(stamp(datetime(2026, 10, 1, 2, tzinfo=UTC)), "lc-1")  # 10:00 on 10-01


def _event(kind: str, at: datetime, event_id: str = "e-1") -> events_pb2.Event:
    event = events_pb2.Event(event_id=event_id, tenant_id="t", group_id="g")
    event.occurred_at.FromDatetime(at)
    getattr(event, kind).member.id = "u-1"
    return event


def _counts(kind: str, at: datetime) -> list[dict[str, int]]:
    return [s.counts for s in cohort_shares(_event(kind, at), [JOINED], SHANGHAI)]


def test_a_message_on_the_join_day_activates_and_on_d1_d7_d30_is_active_there() -> None:
    assert _counts("message_posted", datetime(2026, 10, 1, 3, tzinfo=UTC)) == [{"activated": 1}]
    on_d1 = _counts("message_posted", datetime(2026, 10, 2, 3, tzinfo=UTC))
    assert on_d1 == [{"activated": 1}, {"d1_active": 1}]
    on_d7 = _counts("message_posted", datetime(2026, 10, 8, 3, tzinfo=UTC))
    assert on_d7 == [{"activated": 1}, {"d7_active": 1}]
    assert _counts("message_posted", datetime(2026, 10, 9, 3, tzinfo=UTC)) == []
    assert _counts("message_posted", datetime(2026, 10, 31, 3, tzinfo=UTC)) == [{"d30_active": 1}]


def test_days_are_the_tenants_days() -> None:
    # 16:30 UTC on 10-01 is 00:30 on 10-02 in Shanghai: D1.
    late = _counts("message_posted", datetime(2026, 10, 1, 16, 30, tzinfo=UTC))
    assert late == [{"activated": 1}, {"d1_active": 1}]


def test_a_leave_is_gone_from_every_horizon_not_yet_passed() -> None:
    assert _counts("member_left", datetime(2026, 10, 2, 3, tzinfo=UTC)) == [
        {"d1_left": 1, "d7_left": 1, "d30_left": 1}
    ]
    assert _counts("member_left", datetime(2026, 10, 9, 3, tzinfo=UTC)) == [{"d30_left": 1}]
    assert _counts("member_left", datetime(2026, 11, 1, 3, tzinfo=UTC)) == []


def test_each_membership_claims_its_activation_once_and_a_leave_by_its_event() -> None:
    at = datetime(2026, 10, 2, 3, tzinfo=UTC)
    first = cohort_shares(_event("message_posted", at, "e-1"), [JOINED], SHANGHAI)
    second = cohort_shares(_event("message_posted", at, "e-2"), [JOINED], SHANGHAI)
    assert [s.claim for s in first] == [s.claim for s in second]
    assert all(s.lasting for s in first)
    [left] = cohort_shares(_event("member_left", at, "e-3"), [JOINED], SHANGHAI)
    assert left.claim == "e-3:left" and not left.lasting


def test_events_belong_to_the_last_join_before_them_and_none_before_any() -> None:
    rejoined = Joining(stamp(datetime(2026, 10, 20, tzinfo=UTC)))
    assert membership([JOINED, rejoined], stamp(datetime(2026, 10, 5, tzinfo=UTC))) == JOINED
    assert membership([JOINED, rejoined], stamp(datetime(2026, 10, 21, tzinfo=UTC))) == rejoined
    before = _event("message_posted", datetime(2026, 9, 30, tzinfo=UTC))
    assert cohort_shares(before, [JOINED], SHANGHAI) == []


def test_a_joining_is_kept_as_text_sorted_by_time() -> None:
    later = Joining(JOINED.at + 1, "lc|2", True)
    assert Joining.decode(later.encode()) == later
    assert sorted([later.encode(), JOINED.encode()]) == [JOINED.encode(), later.encode()]
