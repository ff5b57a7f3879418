"""The rows the statistics answer with, from counter documents (plain code: documents in, rows
out). A tenant's totals are running sums of what each day added and took away, so a day's
documents say what happened that day, and a late event changes only its own day."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from services.runtime.store import Document

TENANT_DAY_FIELDS = (
    "groups_total",
    "groups_new",
    "groups_with_messages",
    "members_total",
    "members_new",
    "members_posted",
    "messages_total",
)
# Kept per day, answered as totals: (the total, what adds to it, what takes from it).
RUNNING = (
    ("groups_total", "groups_new", "groups_dismissed"),
    ("members_total", "members_new", "members_left"),
)
DELTAS = tuple(name for _, *changes in RUNNING for name in changes)
# What a day's documents hold, added up over its partitions.
COUNTED = tuple(
    dict.fromkeys((*DELTAS, "groups_with_messages", "members_posted", "messages_total"))
)


def totals_before(docs: Iterable[Document]) -> dict[str, int]:
    """The running totals at the end of the days of `docs` (every day before a range)."""
    totals = dict.fromkeys((total for total, _, _ in RUNNING), 0)
    for doc in docs:
        for total, added, taken in RUNNING:
            totals[total] += int(doc.get(added, 0)) - int(doc.get(taken, 0))
    return totals


def tenant_rows(
    days: Sequence[date], docs: Iterable[Document], before: dict[str, int]
) -> list[dict[str, Any]]:
    """One row a day: the day's counts, added up over its documents (one per partition), and
    the totals at its end. A total never shows below zero: leaves of members joined before
    Shequn saw the group would take it there."""
    added: dict[str, dict[str, int]] = {d.isoformat(): {} for d in days}
    for doc in docs:
        day = added.get(doc["date"])
        if day is None:
            continue
        for name in COUNTED:
            day[name] = day.get(name, 0) + int(doc.get(name, 0))
    running, rows = dict(before), []
    for d in days:
        counts = added[d.isoformat()]
        for total, more, fewer in RUNNING:
            running[total] += counts.get(more, 0) - counts.get(fewer, 0)
        row: dict[str, Any] = {"date": d.isoformat()}
        for name in TENANT_DAY_FIELDS:
            row[name] = max(running[name], 0) if name in running else counts.get(name, 0)
        rows.append(row)
    return rows
