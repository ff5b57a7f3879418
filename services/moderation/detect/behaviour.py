"""Checks of behaviour rather than content: flood (刷屏), cross-group spam and probation.

Flood windows are kept in memory by the consumer that owns the group's partition (its events
arrive there in order); cross-group counts come from a shared store, so several moderation
replicas agree; probation is judged from the member's join time. The functions here only decide."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.moderation.detect.content import AD_CHECKS, Answer, Finding
from services.moderation.detect.ruleset import CrossGroup, Flood


@dataclass
class _Recent:
    times: deque[datetime] = field(default_factory=deque)
    texts: deque[tuple[datetime, str]] = field(default_factory=deque)


class FloodWatch:
    """Per member of a group: more than N messages in a window, or the same text M times."""

    def __init__(self) -> None:
        self._members: dict[str, _Recent] = {}

    def observe(self, key: str, at: datetime, text: str, rule: Flood) -> Answer:
        recent = self._members.setdefault(key, _Recent())
        window = timedelta(seconds=rule.window_seconds)
        same_window = timedelta(seconds=rule.same_text_window_seconds)
        recent.times.append(at)
        while recent.times and recent.times[0] <= at - window:
            recent.times.popleft()
        if text:
            recent.texts.append((at, text))
        while recent.texts and recent.texts[0][0] <= at - same_window:
            recent.texts.popleft()
        if not rule.enabled:
            return Answer("flood")
        if len(recent.times) > rule.max_messages:
            detail = f"{len(recent.times)} messages in {rule.window_seconds}s"
            return Answer("flood", (Finding("flood", "flood", text, None, detail),))
        repeats = sum(1 for _, t in recent.texts if t == text) if text else 0
        if repeats >= rule.same_text:
            detail = f"the same text {repeats} times"
            return Answer("flood", (Finding("flood", "flood", text, None, detail),))
        return Answer("flood")

    def forget(self, prefix: str) -> None:
        """Drop the windows of a group whose partition this consumer no longer owns."""
        for key in [k for k in self._members if k.startswith(prefix)]:
            del self._members[key]


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
