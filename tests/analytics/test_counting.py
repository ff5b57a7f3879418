from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.analytics.counting import contribution, in_series, tenant_contributions, violation
from services.gen.shequn.v1 import decisions_pb2, events_pb2

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _event(kind: str, at: datetime) -> events_pb2.Event:
    event = events_pb2.Event(event_id="e-1", tenant_id="t", group_id="g")
    event.occurred_at.FromDatetime(at)
    if kind == "message":
        event.message_posted.member.id = "u-1"
    elif kind == "join":
        event.member_joined.member.id = "u-1"
    elif kind == "kick":
        event.member_left.member.id = "u-1"
        event.member_left.reason = events_pb2.LEAVE_REASON_KICKED
    elif kind == "quit":
        event.member_left.member.id = "u-1"
        event.member_left.reason = events_pb2.LEAVE_REASON_QUIT
    elif kind == "order":
        event.order_placed.member.id = "u-1"
    return event


@pytest.mark.parametrize(
    ("kind", "counts", "poster"),
    [
        ("message", {"messages": 1}, "u-1"),
        ("join", {"joins": 1}, ""),
        ("kick", {"leaves": 1, "kicks": 1}, ""),
        ("quit", {"leaves": 1}, ""),
    ],
)
def test_what_each_event_counts(kind: str, counts: dict[str, int], poster: str) -> None:
    c = contribution(_event(kind, datetime(2026, 11, 22, 3, tzinfo=UTC)), SHANGHAI)
    assert c is not None
    assert (c.counts, c.poster) == (counts, poster)
    assert c.doc_id == "t:g:2026-11-22"
    assert c.claim == "t:e-1"


def test_orders_count_with_their_amount() -> None:
    event = _event("order", datetime(2026, 11, 22, tzinfo=UTC))
    event.order_placed.amount.minor = 19900
    c = contribution(event, SHANGHAI)
    assert c is not None and c.counts == {"orders": 1, "order_amount": 19900}


def test_engagements_check_ins_and_auto_replies_count_in_their_group() -> None:
    checked = events_pb2.Event(event_id="engagement:e-1:checkin", tenant_id="t", group_id="g")
    checked.member_checked_in.member.id = "u-1"
    replied = events_pb2.Event(event_id="engagement:e-2:autoreply", tenant_id="t", group_id="g")
    replied.auto_replied.rule_id = "r-1"
    found = [contribution(e, SHANGHAI) for e in (checked, replied)]
    assert [(c.counts, c.claim) for c in found if c] == [
        ({"checkins": 1}, "t:engagement:e-1:checkin"),
        ({"autoreplies": 1}, "t:engagement:e-2:autoreply"),
    ]


def test_a_welcome_counts_each_member_welcomed() -> None:
    event = events_pb2.Event(event_id="e-1", tenant_id="t", group_id="g")
    event.member_welcomed.members.add(id="u-1")
    event.member_welcomed.members.add(id="u-2")
    c = contribution(event, SHANGHAI)
    assert c is not None and c.counts == {"welcomes": 2}


def test_a_message_is_the_tenants_message_and_its_members_and_groups_first_of_the_day() -> None:
    late_utc = datetime(2026, 11, 22, 17, 30, tzinfo=UTC)  # the 23rd in Shanghai
    shares = tenant_contributions(_event("message", late_utc), 4, SHANGHAI)
    assert [(s.claim, s.counts, s.lasting) for s in shares] == [
        ("t:e-1:day", {"messages_total": 1}, False),
        ("t:active:2026-11-23:g", {"groups_with_messages": 1}, True),
        ("t:posted:2026-11-23:u-1", {"members_posted": 1}, True),
    ]
    assert {s.doc_id for s in shares} == {"t:2026-11-23:004"}


@pytest.mark.parametrize(
    ("kind", "counted"),
    [("join", "members_new"), ("kick", "members_left"), ("quit", "members_left")],
)
def test_what_each_membership_adds_to_the_tenants_day(kind: str, counted: str) -> None:
    shares = tenant_contributions(_event(kind, datetime(2026, 11, 22, tzinfo=UTC)), 0, SHANGHAI)
    assert [s.counts for s in shares] == [{counted: 1}]


def test_an_attributed_order_is_revenue_and_campaign_revenue_of_its_day() -> None:
    event = _event("order", datetime(2026, 11, 22, tzinfo=UTC))
    event.order_placed.amount.minor, event.order_placed.attribution = 1990, "双十二"
    [share] = tenant_contributions(event, 0, SHANGHAI)
    assert share.counts == {
        "orders": 1, "order_amount": 1990, "attributed_orders": 1, "attributed_amount": 1990,
    }  # fmt: skip


def test_days_are_the_tenants_days() -> None:
    late_utc = datetime(2026, 11, 22, 17, 30, tzinfo=UTC)  # 01:30 on the 23rd in Shanghai
    c = contribution(_event("message", late_utc), SHANGHAI)
    assert c is not None and c.fields["date"] == "2026-11-23"


def _decision(rule: str, decided: datetime, event_at: datetime | None) -> decisions_pb2.Decision:
    decision = decisions_pb2.Decision(
        decision_id=f"e-1:{rule}", tenant_id="t", group_id="g", event_id="e-1", rule=rule
    )
    decision.decided_at.FromDatetime(decided)
    if event_at:
        decision.event_occurred_at.FromDatetime(event_at)
    return decision


def test_a_violation_counts_on_the_day_of_the_event_however_late_it_is_judged() -> None:
    before_midnight = datetime(2026, 11, 22, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    first = violation(_decision("ad", before_midnight, before_midnight), SHANGHAI)
    again = violation(
        _decision("ad", datetime(2026, 11, 22, 16, 5, tzinfo=UTC), before_midnight), SHANGHAI
    )
    assert first is not None and again is not None
    assert (first.doc_id, first.claim) == (again.doc_id, again.claim)
    assert first.fields["date"] == "2026-11-22" and first.counts == {"violations": 1}
    assert violation(_decision("unban", before_midnight, None), SHANGHAI) is None
    assert violation(_decision("dedupe", before_midnight, None), SHANGHAI) is None


def test_a_tenant_day_counts_again_in_each_series_of_the_group() -> None:
    event = _event("join", datetime(2026, 11, 22, tzinfo=UTC))
    event.member_joined.inviter.id = "i.1"
    [share] = tenant_contributions(event, 0, SHANGHAI)
    series = in_series(share, ["vip", "双十二"])
    assert series is not None and (series.doc_id, series.counts) == (share.doc_id, {})
    assert series.claim == share.claim + ":s" and series.keyed == {
        "vip.members_new": 1, "vip.inviters.i%2E1": 1,
        "双十二.members_new": 1, "双十二.inviters.i%2E1": 1,
    }  # fmt: skip
    assert in_series(share, []) is None
    firsts = tenant_contributions(
        _event("message", datetime(2026, 11, 22, tzinfo=UTC)), 0, SHANGHAI
    )
    assert [in_series(c, ["vip"]) is None for c in firsts] == [False, True, True]
