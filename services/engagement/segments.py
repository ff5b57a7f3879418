"""Member segments per group and day, pure: who starts conversations and who draws replies, and
the 10/20/70 split that follows — KOC (the top 10% of the group's members), interactive (the
next 20%), silent (the rest, those who said nothing among them).

A message scores for its author when it starts a conversation (the group was quiet for
`QUIET` before it, or it is the day's first), and for the author of the message before it when
it answers that one (another member, within `REPLY_WITHIN`): that message drew a reply. The
day's state is the scores, the last message, and the ids of the messages already counted, so
that a message delivered again counts once."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

QUIET = timedelta(minutes=10)
REPLY_WITHIN = timedelta(minutes=2)
SEEN_KEPT = 1000  # per group and day: more than a batch can bring again


@dataclass(frozen=True)
class Said:
    event_id: str
    at: datetime
    member_id: str


@dataclass(frozen=True)
class Day:
    scores: dict[str, int] = field(default_factory=dict)
    last: Said | None = None
    seen: tuple[str, ...] = ()


def scored(day: Day, messages: Iterable[Said]) -> Day:
    """The day after `messages` (in any order; each counted once)."""
    scores, last, seen = dict(day.scores), day.last, list(day.seen)
    known = set(seen)
    for m in sorted(messages, key=lambda m: (m.at, m.event_id)):
        if m.event_id in known:
            continue
        known.add(m.event_id)
        seen.append(m.event_id)
        if last is not None and m.at < last.at:
            continue  # late: the conversation it belonged to was judged without it
        if last is None or m.at - last.at >= QUIET:
            scores[m.member_id] = scores.get(m.member_id, 0) + 1  # starts a conversation
        elif m.member_id != last.member_id and m.at - last.at <= REPLY_WITHIN:
            scores[last.member_id] = scores.get(last.member_id, 0) + 1  # that drew a reply
        last = m
    return Day(scores, last, tuple(seen[-SEEN_KEPT:]))


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
