"""Checks of behaviour rather than content: flood (刷屏), cross-group spam and probation.

Flood windows are kept in memory by the consumer that owns the group's partition (every event
of the group reaches it, though not always in the order they happened); cross-group counts come
from a shared store, so several moderation replicas agree; probation is judged from the
member's join time. The functions here only decide."""

from __future__ import annotations

import time
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.moderation.detect.content import AD_CHECKS, Answer, Finding
from services.moderation.detect.ruleset import CrossGroup, Flood
from services.runtime.instants import stamp

_MICROSECOND = timedelta(microseconds=1)


class _Window:
    """Messages in time order: when (epoch microseconds) and a hash of what (an event id or a
    text), which is all that telling them apart needs within one process: 16 bytes a message."""

    __slots__ = ("at", "what")

    def __init__(self) -> None:
        self.at, self.what = array("q"), array("q")

    def add(self, at: int, what: int) -> None:
        i = bisect_right(self.at, at)
        self.at.insert(i, at)
        self.what.insert(i, what)

    def clear(self) -> None:
        del self.at[:], self.what[:]

    def within(self, seconds: int, at: int) -> array[int]:
        """What the window that ends at `at` holds, after dropping what is out of the window of
        the latest message (only a late message could still count it)."""
        if not self.at:
            return array("q")
        gone = bisect_right(self.at, self.at[-1] - seconds * 1_000_000)
        del self.at[:gone], self.what[:gone]
        start = bisect_right(self.at, at - seconds * 1_000_000)
        return self.what[start : bisect_right(self.at, at)]


@dataclass(slots=True)
class _Recent:
    group: str
    times: _Window = field(default_factory=_Window)  # every message, by event id
    texts: _Window = field(default_factory=_Window)  # those with a text, by text
    keep: timedelta = timedelta(0)  # the longest window of the rule last applied
    # The messages found flooding, with their finding: a burst's windows start again after it,
    # so a message judged again (a retried batch) must get its answer from here.
    flagged: dict[str, tuple[datetime, Finding]] = field(default_factory=dict)


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
        self._members: OrderedDict[tuple[str, str], _Recent] = OrderedDict()
        self._clocks: dict[str, datetime] = {}  # per group, its latest message's time
        self._heard: dict[str, float] = {}  # per group, when its latest message came (`clock`)

    def __len__(self) -> int:
        return len(self._members)

    def observe(
        self, group: str, member: str, event_id: str, at: datetime, text: str, rule: Flood
    ) -> Answer:
        recent = self._members.pop((group, member), None) or _Recent(group)
        self._members[(group, member)] = recent
        if len(self._members) > self.max_members:
            self._members.popitem(last=False)
        self._clocks[group] = max(self._clocks.get(group, at), at)
        self._heard[group] = self.clock()
        recent.keep = timedelta(seconds=max(rule.window_seconds, rule.same_text_window_seconds))
        if event_id in recent.flagged:
            return Answer("flood", (recent.flagged[event_id][1],))
        when, said, written = stamp(at), hash(event_id), hash(text)
        if said not in recent.times.what:
            recent.times.add(when, said)
            if text:
                recent.texts.add(when, written)
        recent_times = recent.times.within(rule.window_seconds, when)
        recent_texts = recent.texts.within(rule.same_text_window_seconds, when)
        if not rule.enabled:
            return Answer("flood")
        detail = ""
        if len(recent_times) > rule.max_messages:
            detail = f"{len(recent_times)} messages in {rule.window_seconds}s"
        elif text and (repeats := recent_texts.count(written)) >= rule.same_text:
            detail = f"the same text {repeats} times"
        if not detail:
            return Answer("flood")
        # One violation per burst: the member's windows start again.
        recent.texts.clear()
        recent.times.clear()
        recent.times.add(when, said)
        finding = Finding("flood", "flood", text, None, detail)
        recent.flagged = {
            e: flagged for e, flagged in recent.flagged.items() if flagged[0] + recent.keep >= at
        }
        recent.flagged[event_id] = (at, finding)
        return Answer("flood", (finding,))

    def prune(self) -> None:
        """Forget members whose every message is out of their windows by their group's time,
        and those of groups silent for longer than their windows."""
        now = self.clock()
        for key, recent in list(self._members.items()):
            last = recent.times.at[-1]  # the latest message: never empty
            silent = now - self._heard[recent.group] >= recent.keep.total_seconds()
            if silent or last + recent.keep // _MICROSECOND <= stamp(self._clocks[recent.group]):
                del self._members[key]
        groups = {recent.group for recent in self._members.values()}
        self._clocks = {g: at for g, at in self._clocks.items() if g in groups}
        self._heard = {g: at for g, at in self._heard.items() if g in groups}


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
