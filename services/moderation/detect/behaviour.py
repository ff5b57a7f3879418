"""Checks of behaviour rather than content: flood (刷屏), cross-group spam and probation.

Flood windows are kept in memory by the consumer that owns the group's partition (every event
of the group reaches it, though not always in the order they happened); cross-group counts come
from a shared store, so several moderation replicas agree; probation is judged from the
member's join time. The functions here only decide."""

from __future__ import annotations

import time
from array import array
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from services.moderation.detect.content import AD_CHECKS, Answer, Finding
from services.moderation.detect.ruleset import CrossGroup, Flood
from services.runtime.instants import stamp

_SECOND = 1_000_000  # microseconds
_NO_TEXT = 0


class _Window:
    """One member's messages in one group, in time order, three integers each in one array:
    when (epoch microseconds), a hash of its event id and a hash of its text (0: none). That is
    all that telling them apart needs within one process: 24 bytes a message and two objects a
    member, which matters with every member of every busy group watched. The messages found
    flooding are kept apart with their finding: a burst's window starts again after it, so a
    message judged again (a retried batch) must get its answer from there."""

    __slots__ = ("flagged", "items")

    def __init__(self) -> None:
        self.items: array[int] = array("q")
        self.flagged: dict[str, tuple[int, Finding]] | None = None

    def latest(self) -> int:
        return self.items[-3]

    def holds(self, said: int) -> bool:
        return said in self.items[1::3]

    def add(self, at: int, said: int, written: int) -> None:
        lo, hi = 0, len(self.items) // 3  # after every message at `at` or before
        while lo < hi:
            mid = (lo + hi) // 2
            if self.items[3 * mid] <= at:
                lo = mid + 1
            else:
                hi = mid
        self.items[3 * lo : 3 * lo] = array("q", (at, said, written))

    def forget_until(self, edge: int) -> None:
        kept = 0
        while self.items[3 * kept] <= edge:  # the latest message is always kept
            kept += 1
        del self.items[: 3 * kept]

    def messages(self, after: int, until: int) -> int:
        return sum(1 for at in self.items[::3] if after < at <= until)

    def repeats(self, written: int, after: int, until: int) -> int:
        items = self.items
        return sum(
            1
            for i in range(0, len(items), 3)
            if items[i + 2] == written and after < items[i] <= until
        )

    def last_text(self) -> int | None:
        for i in range(len(self.items) - 3, -1, -3):
            if self.items[i + 2] != _NO_TEXT:
                return self.items[i]
        return None


class FloodWatch:
    """Per member of a group: more than N messages in a window, or the same text M times.
    A message seen again (a redelivery) is not counted twice.

    Time is the events' own (`occurred_at`), never the wall clock, so a replayed or lagging
    stream is judged as it was lived. Messages may arrive out of order (concurrent senders, a
    platform's retries): each is judged by the messages of the window that ends at it, and only
    what the windows of the member's latest message hold is kept, so a late message may find
    fewer messages than were sent, never more. Memory is bounded three times: `prune` forgets
    members whose messages have all left their windows, measured against their group's latest
    message (such a member's next message would find its windows empty anyway, and one tenant's
    clock never touches another's), and those of a group nothing was heard from for longer than
    their windows, by the process's clock (a silent group's own time stands still); and at most
    `max_members` are watched, the least recently heard from going first."""

    def __init__(
        self, max_members: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_members, self.clock = max_members, clock
        self._members: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self._clocks: dict[str, int] = {}  # per group, its latest message's time
        self._heard: dict[str, float] = {}  # per group, when its latest message came (`clock`)
        self._keep: dict[str, int] = {}  # per group, the longest window of its rule

    def __len__(self) -> int:
        return len(self._members)

    def observe(
        self, group: str, member: str, event_id: str, at: datetime, text: str, rule: Flood
    ) -> Answer:
        window = self._members.pop((group, member), None) or _Window()
        self._members[(group, member)] = window
        if len(self._members) > self.max_members:
            self._members.popitem(last=False)
        when = stamp(at)
        self._clocks[group] = max(self._clocks.get(group, when), when)
        self._heard[group] = self.clock()
        keep = self._keep[group] = _SECOND * max(rule.window_seconds, rule.same_text_window_seconds)
        if window.flagged and event_id in window.flagged:
            return Answer("flood", (window.flagged[event_id][1],))
        said, written = hash(event_id), hash(text) if text else _NO_TEXT
        if not window.holds(said):
            window.add(when, said, written)
        latest = window.latest()
        window.forget_until(latest - keep)
        if not rule.enabled:
            return Answer("flood")
        detail = ""
        # What the windows ending at the member's latest message hold, up to this one.
        messages = window.messages(latest - _SECOND * rule.window_seconds, when)
        if messages > rule.max_messages:
            detail = f"{messages} messages in {rule.window_seconds}s"
        elif text and (last := window.last_text()) is not None:
            after = last - _SECOND * rule.same_text_window_seconds
            if (repeats := window.repeats(written, after, when)) >= rule.same_text:
                detail = f"the same text {repeats} times"
        if not detail:
            return Answer("flood")
        # One violation per burst: the member's window starts again.
        window.items = array("q", (when, said, _NO_TEXT))
        finding = Finding("flood", "flood", text, None, detail)
        flagged = {e: f for e, f in (window.flagged or {}).items() if f[0] + keep >= when}
        window.flagged = {**flagged, event_id: (when, finding)}
        return Answer("flood", (finding,))

    def prune(self) -> None:
        """Forget members whose every message is out of their windows by their group's time,
        and those of groups silent for longer than their windows."""
        now = self.clock()
        for key, window in list(self._members.items()):
            group = key[0]
            keep = self._keep[group]
            silent = now - self._heard[group] >= keep / _SECOND
            if silent or window.latest() + keep <= self._clocks[group]:
                del self._members[key]
        groups = {group for group, _ in self._members}
        self._clocks = {g: at for g, at in self._clocks.items() if g in groups}
        self._heard = {g: at for g, at in self._heard.items() if g in groups}
        self._keep = {g: keep for g, keep in self._keep.items() if g in groups}


def probation(
    joined_at: datetime | None, at: datetime, minutes: int, content: list[Answer]
) -> Answer:
    """Links or ads from a member who joined less than `minutes` ago."""
    if joined_at is None or minutes <= 0 or at - joined_at >= timedelta(minutes=minutes):
        return Answer("probation")
    found = [f for a in content if a.check in AD_CHECKS for f in a.findings]
    if not found:
        return Answer("probation")
    first = found[0]
    detail = f"joined {int((at - joined_at).total_seconds() // 60)} min ago; {first.check}"
    return Answer(
        "probation", (Finding("probation", "probation", first.evidence, first.span, detail),)
    )


def cross_group(groups_seen: int, rule: CrossGroup, text: str) -> Answer:
    """The same normalized text posted in this many groups within the window."""
    if not rule.enabled or groups_seen < rule.groups:
        return Answer("cross_group")
    detail = f"the same text in {groups_seen} groups within {rule.window_seconds}s"
    return Answer("cross_group", (Finding("cross_group", "cross_group", text, None, detail),))
