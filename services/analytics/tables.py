"""The reports' rows, from counter documents (plain code: documents in, rows out): retention
cohorts, the AARRR funnel, live-code funnels, leaderboards, campaign ROI and dead groups.

Day documents come from group days or tenant days alike: `day_counts` reads either."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from services.analytics.cohorts import HORIZONS
from services.analytics.counting import COHORT_FIELDS, of_map_key
from services.runtime.store import Document

Row = dict[str, Any]

COHORT_COLUMNS = (
    "date",
    "joined",
    *(f"d{n}_{what}" for n in HORIZONS for what in ("members", "active")),
)
AARRR_COLUMNS = (
    "group_id", "acquired", "activated", "retained_d7", "retained_d30", "revenue_orders",
    "revenue_amount", "referrers", "referred",
)  # fmt: skip
LIVECODE_COLUMNS = (
    "livecode", "scans", "joins", "stayed", "activated", "invited_scans", "invited_joins",
    "invited_stayed", "completed",
)  # fmt: skip
LEADERBOARD_COLUMNS = ("rank", "member_id", "value")
ROI_COLUMNS = (
    "date", "coupon_spend", "red_packet_spend", "spend", "attributed_orders",
    "attributed_amount", "roi",
)  # fmt: skip
DEAD_COLUMNS = (
    "group_id", "name", "tags", "members", "last_message_day", "active_7d", "active_ratio",
    "reason",
)  # fmt: skip
# Leaderboards: the per-member map each reads, and how a member's days add up.
BOARDS = {"talkers": ("talkers", sum), "inviters": ("inviters", sum), "streaks": ("streaks", max)}
# What each report reads of a day document (a group's joins are a tenant's `members_new`).
COHORT_READS = ("joins", "members_new", *COHORT_FIELDS)
AARRR_READS = (*COHORT_READS, "orders", "order_amount", "inviters")
DEAD_SILENT_DAYS = 7
DEAD_ACTIVE_RATIO = 0.05


def _n(doc: Document, name: str) -> int:
    return int(doc.get(name, 0) or 0)


def day_counts(docs: Iterable[Document]) -> dict[str, dict[str, int]]:
    """Each day's counts added up over its documents (partitions, or the groups chosen). A
    tenant's day calls its joins `members_new`, a group's `joins`."""
    days: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for doc in docs:
        day = days[doc["date"]]
        for name, value in doc.items():
            if isinstance(value, int) and not isinstance(value, bool) and name != "partition":
                day["joins" if name == "members_new" else name] += value
    return days


def cohorts(days: Sequence[date], docs: Iterable[Document], today: date) -> list[Row]:
    """A row per join day: joined, then for D1/D7/D30 those still members at the end of that
    day and those who posted on it; empty (None) for a day not yet come."""
    counted = day_counts(docs)
    rows = []
    for d in days:
        c = counted.get(d.isoformat(), {})
        row: Row = {"date": d.isoformat(), "joined": c.get("joins", 0)}
        for n in HORIZONS:
            due = d + timedelta(days=n) <= today
            row[f"d{n}_members"] = c.get("joins", 0) - c.get(f"d{n}_left", 0) if due else None
            row[f"d{n}_active"] = c.get(f"d{n}_active", 0) if due else None
        rows.append(row)
    return rows


def _merged(docs: Iterable[Document], field: str, add: Any = sum) -> dict[str, int]:
    values: dict[str, list[int]] = defaultdict(list)
    for doc in docs:
        for key, n in (doc.get(field) or {}).items():
            values[of_map_key(key)].append(int(n))
    return {member: add(ns) for member, ns in values.items()}


def aarrr(group_id: str, docs: Sequence[Document]) -> Row:
    """Acquired (joined), activated (posted within 7 days), retained (posted on D7, D30),
    revenue (orders placed in the group and their amount), referral (members who brought
    others in, and how many they brought)."""
    total: dict[str, int] = defaultdict(int)
    for counts in day_counts(docs).values():
        for name, n in counts.items():
            total[name] += n
    invited = _merged(docs, "inviters")
    return {
        "group_id": group_id,
        "acquired": total["joins"],
        "activated": total["activated"],
        "retained_d7": total["d7_active"],
        "retained_d30": total["d30_active"],
        "revenue_orders": total["orders"],
        "revenue_amount": total["order_amount"],
        "referrers": len(invited),
        "referred": sum(invited.values()),
    }


def livecode_funnels(docs: Iterable[Document]) -> list[Row]:
    """A row per live code: scans, joins, of those who stayed to D7 and who posted within 7
    days; the same for fission invite codes, and the fission tasks completed."""
    found: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for doc in docs:
        for code, counts in (doc.get("codes") or {}).items():
            for name, n in counts.items():
                found[of_map_key(code)][name] += int(n)
    rows = []
    for code in sorted(found):
        c = found[code]
        rows.append({
            "livecode": code,
            "scans": c["scans"],
            "joins": c["joins"],
            "stayed": c["joins"] - c["d7_left"],
            "activated": c["activated"],
            "invited_scans": c["invited_scans"],
            "invited_joins": c["invited_joins"],
            "invited_stayed": c["invited_joins"] - c["invited_d7_left"],
            "completed": c["completed"],
        })  # fmt: skip
    return rows


def leaderboard(docs: Iterable[Document], board: str) -> list[Row]:
    """Members ranked by the board's value, highest first (ties by member id); ranks 1, 2, ..."""
    field, add = BOARDS[board]
    values = _merged(docs, field, add)
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"rank": i, "member_id": m, "value": v} for i, (m, v) in enumerate(ranked, 1) if v]


def roi(days: Sequence[date], docs: Iterable[Document]) -> tuple[list[Row], Row]:
    """Per day and in all: coupons redeemed and red packets paid (spend) against the orders
    credited to a campaign, live code or invite code (attributed), amounts in 分; `roi` is the
    attributed amount per unit spent, None with nothing spent."""
    counted = day_counts(docs)

    def row(label: str, c: dict[str, int]) -> Row:
        spend = c.get("coupon_spend", 0) + c.get("red_packet_spend", 0)
        amount = c.get("attributed_amount", 0)
        return {
            "date": label,
            "coupon_spend": c.get("coupon_spend", 0),
            "red_packet_spend": c.get("red_packet_spend", 0),
            "spend": spend,
            "attributed_orders": c.get("attributed_orders", 0),
            "attributed_amount": amount,
            "roi": round(amount / spend, 2) if spend else None,
        }

    rows = [row(d.isoformat(), counted.get(d.isoformat(), {})) for d in days]
    total: dict[str, int] = defaultdict(int)
    for d in days:
        for name, n in counted.get(d.isoformat(), {}).items():
            total[name] += n
    return rows, row("total", total)


def dead_groups(groups: Iterable[Document], on: date) -> list[Row]:
    """Groups with no message in the `DEAD_SILENT_DAYS` days to `on` (silent), or fewer than
    `DEAD_ACTIVE_RATIO` of their members posting in them (inactive). Each group has its first
    and last message days (`first_day`, `last_day`, in the tenant's zone); one seen first in
    those days is too new to judge, and dismissed ones are not listed."""
    first = (on - timedelta(days=DEAD_SILENT_DAYS - 1)).isoformat()
    rows = []
    for g in groups:
        if g.get("dismissed") or g.get("first_day", "") >= first:
            continue
        members, last = max(_n(g, "members"), 0), g.get("last_day", "")
        active = {e.split("|", 1)[1] for e in g.get("recent", []) if first <= e[:10] <= str(on)}
        ratio = len(active) / members if members else 0.0
        if last < first:
            reason = "silent"
        elif members and ratio < DEAD_ACTIVE_RATIO:
            reason = "inactive"
        else:
            continue
        rows.append({
            "group_id": g["group_id"], "name": g.get("name", ""), "tags": g.get("tags", []),
            "members": members, "last_message_day": last or None, "active_7d": len(active),
            "active_ratio": round(ratio, 4), "reason": reason,
        })  # fmt: skip
    return sorted(rows, key=lambda r: r["group_id"])


def page(rows: list[Row], key: str, after: str | None, limit: int) -> tuple[list[Row], str | None]:
    """Rows after the one whose `key` is `after`, at most `limit`, and the next page's `after`."""
    if after is not None:
        rows = [r for r in rows if _later(r[key], after)]
    shown = rows[:limit]
    return shown, (str(shown[-1][key]) if len(rows) > limit else None)


def _later(value: Any, after: str) -> bool:
    if isinstance(value, int):  # a rank
        return not after.isdigit() or value > int(after)
    return str(value) > after
