"""A tenant's rows from its day documents: counts added up over partitions, totals running."""

from __future__ import annotations

from datetime import date, timedelta

from services.analytics.statistics import tenant_rows, totals_before

DAYS = [date(2026, 12, 1) + timedelta(days=i) for i in range(3)]


def test_totals_run_over_the_days_and_counts_add_up_over_partitions() -> None:
    before = totals_before(
        [
            {"groups_new": 3, "members_new": 40, "members_left": 2},
            {"groups_new": 1, "groups_dismissed": 1, "members_new": 5},
        ]
    )
    assert before == {"groups_total": 3, "members_total": 43}
    docs = [
        {"date": "2026-12-01", "partition": 0, "members_new": 2, "messages_total": 10,
         "members_posted": 3, "groups_with_messages": 1},
        {"date": "2026-12-01", "partition": 5, "members_new": 1, "members_left": 4,
         "messages_total": 5, "members_posted": 2, "groups_with_messages": 1},
        {"date": "2026-12-03", "partition": 0, "groups_new": 1, "groups_dismissed": 2},
    ]  # fmt: skip
    rows = tenant_rows(DAYS, docs, before)
    assert rows == [
        {"date": "2026-12-01", "groups_total": 3, "groups_new": 0, "groups_with_messages": 2,
         "members_total": 42, "members_new": 3, "members_posted": 5, "messages_total": 15},
        {"date": "2026-12-02", "groups_total": 3, "groups_new": 0, "groups_with_messages": 0,
         "members_total": 42, "members_new": 0, "members_posted": 0, "messages_total": 0},
        {"date": "2026-12-03", "groups_total": 2, "groups_new": 1, "groups_with_messages": 0,
         "members_total": 42, "members_new": 0, "members_posted": 0, "messages_total": 0},
    ]  # fmt: skip


def test_a_total_never_shows_below_zero() -> None:
    docs = [{"date": "2026-12-01", "members_left": 3}, {"date": "2026-12-02", "members_new": 5}]
    rows = tenant_rows(DAYS[:2], docs, {"groups_total": 0, "members_total": 0})
    assert [r["members_total"] for r in rows] == [0, 2]
