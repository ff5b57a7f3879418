"""The reports' rows from hand-made counter documents: the arithmetic, checked by hand."""

from __future__ import annotations

from datetime import date

from services.analytics import tables
from services.analytics.counting import map_key, of_map_key

D1, D2 = date(2026, 10, 1), date(2026, 10, 2)


def test_cohorts_count_who_stayed_and_who_posted_and_leave_days_not_come_empty() -> None:
    docs = [
        {"date": "2026-10-01", "partition": 0, "members_new": 3, "d1_left": 1, "d1_active": 1,
         "d7_left": 1, "d30_left": 2},
        {"date": "2026-10-01", "partition": 1, "members_new": 2, "d7_active": 2},
    ]  # fmt: skip
    [row, _] = tables.cohorts([D1, D2], docs, today=date(2026, 10, 8))
    assert row == {
        "date": "2026-10-01", "joined": 5, "d1_members": 4, "d1_active": 1, "d7_members": 4,
        "d7_active": 2, "d30_members": None, "d30_active": None,
    }  # fmt: skip


def test_aarrr_adds_up_the_days_and_counts_each_referrer_once() -> None:
    docs = [
        {"date": "2026-10-01", "group_id": "g", "joins": 4, "activated": 3, "d7_active": 2,
         "orders": 1, "order_amount": 990, "inviters": {"i-1": 2}},
        {"date": "2026-10-02", "group_id": "g", "joins": 1, "d30_active": 1,
         "inviters": {"i-1": 1, "i-2": 1}},
    ]  # fmt: skip
    assert tables.aarrr("g", docs) == {
        "group_id": "g", "acquired": 5, "activated": 3, "retained_d7": 2, "retained_d30": 1,
        "revenue_orders": 1, "revenue_amount": 990, "referrers": 2, "referred": 4,
    }  # fmt: skip


def test_leaderboards_add_messages_and_keep_the_longest_streak_ranked_then_by_id() -> None:
    dotted = map_key("a.b$c")
    assert of_map_key(dotted) == "a.b$c" and "." not in dotted and "$" not in dotted
    docs = [
        {"date": "2026-10-01", "talkers": {"u-2": 2, dotted: 3}, "streaks": {"u-2": 4}},
        {"date": "2026-10-02", "talkers": {"u-2": 1, "u-1": 3}, "streaks": {"u-2": 2}},
    ]
    assert tables.leaderboard(docs, "talkers") == [
        {"rank": 1, "member_id": "a.b$c", "value": 3},
        {"rank": 2, "member_id": "u-1", "value": 3},
        {"rank": 3, "member_id": "u-2", "value": 3},
    ]
    assert tables.leaderboard(docs, "streaks") == [{"rank": 1, "member_id": "u-2", "value": 4}]


def test_roi_is_the_attributed_amount_per_unit_spent() -> None:
    docs = [{"date": "2026-10-01", "coupon_spend": 1000, "red_packet_spend": 500,
             "attributed_orders": 1, "attributed_amount": 10000}]  # fmt: skip
    rows, total = tables.roi([D1, D2], docs)
    assert rows[0]["spend"] == 1500 and rows[0]["roi"] == 6.67
    assert rows[1]["roi"] is None and total["attributed_amount"] == 10000


def test_livecode_funnels_say_who_stayed_and_keep_invitations_apart() -> None:
    docs = [
        {"date": "2026-10-01", "partition": 0, "codes": {"lc": {
            "scans": 3, "joins": 2, "d7_left": 1, "activated": 1, "invited_scans": 1,
            "invited_joins": 1}}},
        {"date": "2026-10-02", "partition": 3, "codes": {"lc": {"completed": 1}}},
    ]  # fmt: skip
    assert tables.livecode_funnels(docs) == [{
        "livecode": "lc", "scans": 3, "joins": 2, "stayed": 1, "activated": 1,
        "invited_scans": 1, "invited_joins": 1, "invited_stayed": 1, "completed": 1,
    }]  # fmt: skip


def test_dead_groups_are_silent_for_seven_days_or_under_five_percent_active() -> None:
    on, old = date(2026, 10, 31), "2026-10-01"

    def group(name: str, members: int, last: str, **more: object) -> dict[str, object]:
        return {"_id": f"t:{name}", "group_id": name, "members": members, "first_day": old,
                "last_day": last, "recent": [f"{last}|u-1"], **more}  # fmt: skip

    groups = [
        group("a", 2, "2026-10-31"),
        group("b", 3, "2026-10-24"),
        group("c", 25, "2026-10-30"),
        group("d", 20, "2026-10-30"),  # 1 of 20: 5%, not under
        group("e", 9, "2026-10-01", dismissed=1),
        group("f", 40, "2026-10-01", first_day="2026-10-25"),  # too new to judge
    ]
    rows = tables.dead_groups(groups, on)
    assert [(r["group_id"], r["reason"], r["active_7d"]) for r in rows] == [
        ("b", "silent", 0),
        ("c", "inactive", 1),
    ]


def test_a_page_follows_the_key_it_ended_with() -> None:
    rows = [{"rank": i} for i in range(1, 12)]
    first, after = tables.page(rows, "rank", None, 5)
    assert [r["rank"] for r in first] == [1, 2, 3, 4, 5] and after == "5"
    last, after = tables.page(rows, "rank", "10", 5)
    assert [r["rank"] for r in last] == [11] and after is None
