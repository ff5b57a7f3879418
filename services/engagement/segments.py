"""Member segments per group and day, pure: who starts conversations and who draws replies, and
the 10/20/70 split that follows — KOC (the top 10% of the group's members), interactive (the
next 20%), silent (the rest, those who said nothing among them).

A message scores for its author when it starts a conversation (the group was quiet for
`QUIET` before it, or it is the day's first), and for the author of the message before it when
it answers that one (another member, within `REPLY_WITHIN`): that message drew a reply. The
day's state is the scores and the last message taken; messages are taken in (time, id) order,
and one that is not after the last (delivered again, or late) changes nothing, so the state
stays small however much the group says."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

QUIET = timedelta(minutes=10)
REPLY_WITHIN = timedelta(minutes=2)


@dataclass(frozen=True)
class Said:
    event_id: str
    at: datetime
    member_id: str


@dataclass(frozen=True)
class Day:
    scores: dict[str, int] = field(default_factory=dict)
    last: Said | None = None


def scored(day: Day, messages: Iterable[Said]) -> Day:
    """The day after `messages` (in any order; none counted twice)."""
    scores, last = dict(day.scores), day.last
    for m in sorted(messages, key=lambda m: (m.at, m.event_id)):
        if last is not None and (m.at, m.event_id) <= (last.at, last.event_id):
            continue  # taken already, or late: its conversation was judged without it
        if last is None or m.at - last.at >= QUIET:
            scores[m.member_id] = scores.get(m.member_id, 0) + 1  # starts a conversation
        elif m.member_id != last.member_id and m.at - last.at <= REPLY_WITHIN:
            scores[last.member_id] = scores.get(last.member_id, 0) + 1  # that drew a reply
        last = m
    return Day(scores, last)


@dataclass(frozen=True)
class Segments:
    koc: list[str]  # member ids, best first
    interactive: int
    silent: int


def segments(scores: dict[str, int], members: int) -> Segments:
    """The split of a group of `members` members (at least those who scored)."""
    members = max(members, len(scores))
    ranked = sorted((m for m, s in scores.items() if s > 0), key=lambda m: (-scores[m], m))
    top = min(len(ranked), math.ceil(members * 0.1))
    nexts = min(len(ranked) - top, math.ceil(members * 0.3) - top)
    return Segments(ranked[:top], nexts, members - top - nexts)
