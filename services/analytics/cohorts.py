"""What a membership did after its join day: the shares of retention cohorts (D1/D7/D30), of the
AARRR funnel's activation and of the live-code funnels, all counted on the day of the join.
Plain code: a member's joins and one event in, shares out; `counting` turns them into counter
contributions.

A membership begins with a join and is judged by the member's events after it: a message on day
J+N makes it active on DN, one within `ACTIVATED_WITHIN` days activates it, and a leave on or
before day J+N means it did not stay to DN."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from services.gen.shequn.v1 import events_pb2
from services.runtime.envelope import occurred_at
from services.runtime.instants import from_stamp, stamp

HORIZONS = (1, 7, 30)  # D1, D7, D30
ACTIVATED_WITHIN = 7  # days after the join, the join day included as day 0
STAYED = 7  # a live code's join "stayed" when the member is still there at the end of D7


@dataclass(frozen=True, order=True)
class Joining:
    """A member's join: when (epoch µs), through which live code, with a fission invite code."""

    at: int
    livecode: str = ""
    invited: bool = False

    def encode(self) -> str:
        # Sorted as strings, they are sorted by time: what `$addToSet` keeps and a read orders.
        return f"{self.at:017d}|{int(self.invited)}|{self.livecode}"

    @classmethod
    def decode(cls, text: str) -> Joining:
        at, invited, livecode = text.split("|", 2)
        return cls(int(at), livecode, invited == "1")

    def day(self, tz: ZoneInfo) -> date:
        return from_stamp(self.at).astimezone(tz).date()


def joining(event: events_pb2.Event) -> Joining:
    joined = event.member_joined
    return Joining(stamp(occurred_at(event)), joined.livecode, bool(joined.invite_code))


def member_of(event: events_pb2.Event) -> str:
    """The member an event is about, for the kinds that judge a membership."""
    kind = event.WhichOneof("payload")
    if kind in ("member_joined", "member_left", "message_posted"):
        return str(getattr(event, kind).member.id)
    return ""


def membership(joinings: Iterable[Joining], at: int) -> Joining | None:
    """The join that began the membership going on at `at`: the last one at or before it."""
    return max((j for j in joinings if j.at <= at), default=None)


@dataclass(frozen=True)
class CohortShare:
    claim: str  # the membership and what it counts: each counted once
    joined: Joining  # counted on its day, in its live code's funnel
    counts: dict[str, int]
    lasting: bool  # claimed again by later events (a member's next message)


def cohort_shares(
    event: events_pb2.Event, joinings: Iterable[Joining], tz: ZoneInfo
) -> list[CohortShare]:
    """A message's or a leave's shares of its membership's join day."""
    kind = event.WhichOneof("payload")
    if kind not in ("member_left", "message_posted"):
        return []
    at = stamp(occurred_at(event))
    joined = membership(joinings, at)
    if joined is None:
        return []  # a member from before Shequn saw the group: in no cohort
    after = (occurred_at(event).astimezone(tz).date() - joined.day(tz)).days
    membership_id = f"{event.group_id}:{member_of(event)}:{joined.at}"
    if kind == "member_left":
        gone = {f"d{n}_left": 1 for n in HORIZONS if after <= n}
        return [CohortShare(f"{event.event_id}:left", joined, gone, False)] if gone else []
    shares = []
    if after <= ACTIVATED_WITHIN:
        shares.append(CohortShare(f"activated:{membership_id}", joined, {"activated": 1}, True))
    if after in HORIZONS:
        active = {f"d{after}_active": 1}
        shares.append(CohortShare(f"d{after}:{membership_id}", joined, active, True))
    return shares
