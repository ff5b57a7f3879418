"""What each event adds to the per-group daily counters. Plain code: events in, contributions
out; the store applies them exactly once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from services.gen.shequn.v1 import decisions_pb2, events_pb2
from services.runtime.envelope import occurred_at

GROUP_DAY_FIELDS = (
    "messages",
    "active_members",
    "joins",
    "leaves",
    "kicks",
    "violations",
    "checkins",
)


def group_day_id(tenant_id: str, group_id: str, day: date) -> str:
    return f"{tenant_id}:{group_id}:{day.isoformat()}"


@dataclass(frozen=True)
class Contribution:
    """One event's share of one group-day counter document."""

    doc_id: str
    tenant_id: str
    group_id: str
    day: str
    event_id: str  # what it is counted under, once: the event's id, or its decision's
    counts: dict[str, int] = field(default_factory=dict)
    poster: str = ""  # the member who posted, for active_members


# Decisions that are not a member breaking a group rule.
NOT_VIOLATIONS = frozenset({"unban", "dedupe", "manual"})


def _contribution(
    tenant_id: str, group_id: str, day: date, absorbed_as: str, counts: dict[str, int], poster: str
) -> Contribution:
    return Contribution(
        doc_id=group_day_id(tenant_id, group_id, day),
        tenant_id=tenant_id,
        group_id=group_id,
        day=day.isoformat(),
        event_id=absorbed_as,
        counts=counts,
        poster=poster,
    )


def violation(decision: decisions_pb2.Decision, tz: ZoneInfo) -> Contribution | None:
    """A moderation decision's share: one violation on the day of the event judged."""
    if decision.rule in NOT_VIOLATIONS or not decision.group_id:
        return None
    when = decision.event_occurred_at if decision.HasField("event_occurred_at") else None
    day = (when or decision.decided_at).ToDatetime(tz).date()
    # Absorbed under the decision's id: event ids have no ':', so it never equals one.
    absorbed_as = f"decision:{decision.decision_id}"
    return _contribution(
        decision.tenant_id, decision.group_id, day, absorbed_as, {"violations": 1}, ""
    )


def contribution(event: events_pb2.Event, tz: ZoneInfo) -> Contribution | None:
    """The event's contribution, or None for events these counters do not count."""
    kind = event.WhichOneof("payload")
    counts: dict[str, int]
    poster = ""
    if kind == "message_posted":
        counts = {"messages": 1}
        poster = event.message_posted.member.id
    elif kind == "member_joined":
        counts = {"joins": 1}
    elif kind == "member_left":
        kicked = event.member_left.reason == events_pb2.LEAVE_REASON_KICKED
        counts = {"leaves": 1, "kicks": 1} if kicked else {"leaves": 1}
    else:
        return None
    day = occurred_at(event).astimezone(tz).date()
    return _contribution(event.tenant_id, event.group_id, day, event.event_id, counts, poster)


def contributions(events: Iterable[events_pb2.Event], tz: ZoneInfo) -> list[Contribution]:
    found = (contribution(e, tz) for e in events)
    return [c for c in found if c is not None]
