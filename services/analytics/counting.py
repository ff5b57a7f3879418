"""What each event adds to the daily counters. Plain code: events in, contributions out; the
store applies each exactly once (`counters`).

Two families of counter documents:
- group days, `{tenant}:{group}:{day}`: a group's messages, active members, joins, ...;
- tenant days, `{tenant}:{day}:{partition}`: the WeCom statistics set of the whole tenant, one
  document per partition of the events topic, so that each is changed by one partition's events
  only, in their order (what makes counting once cheap, see `counters`)."""

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
    "autoreplies",
    "welcomes",
    "orders",
    "order_amount",
)


def group_day_id(tenant_id: str, group_id: str, day: date) -> str:
    return f"{tenant_id}:{group_id}:{day.isoformat()}"


def tenant_day_id(tenant_id: str, day: date | str, partition: int) -> str:
    return f"{tenant_id}:{day if isinstance(day, str) else day.isoformat()}:{partition:03d}"


@dataclass(frozen=True)
class Contribution:
    """One share of one counter document, counted once under its claim."""

    doc_id: str
    claim: str  # `{tenant}:` and the event's id, its decision's, or a day's first of something
    fields: dict[str, str | int]  # who the document is about, written when it is created
    counts: dict[str, int] = field(default_factory=dict)
    poster: str = ""  # the member who posted, for a group day's active members
    # Claimed again by other events (a member's first message of the day): worth remembering.
    lasting: bool = False


# Decisions that are not a member breaking a group rule.
NOT_VIOLATIONS = frozenset({"unban", "dedupe", "manual"})


def _group_day(
    tenant_id: str, group_id: str, day: date, claim: str, counts: dict[str, int], poster: str = ""
) -> Contribution:
    return Contribution(
        doc_id=group_day_id(tenant_id, group_id, day),
        claim=f"{tenant_id}:{claim}",
        fields={"tenant_id": tenant_id, "group_id": group_id, "date": day.isoformat()},
        counts=counts,
        poster=poster,
    )


def violation(decision: decisions_pb2.Decision, tz: ZoneInfo) -> Contribution | None:
    """A moderation decision's share: one violation on the day of the event judged."""
    if decision.rule in NOT_VIOLATIONS or not decision.group_id:
        return None
    when = decision.event_occurred_at if decision.HasField("event_occurred_at") else None
    day = (when or decision.decided_at).ToDatetime(tz).date()
    # Claimed as the decision: event ids have no ':', so it never equals an event's claim.
    claim = f"decision:{decision.decision_id}"
    return _group_day(decision.tenant_id, decision.group_id, day, claim, {"violations": 1})


def _group_counts(event: events_pb2.Event) -> dict[str, int] | None:
    kind = event.WhichOneof("payload")
    if kind == "message_posted":
        return {"messages": 1}
    if kind == "member_joined":
        return {"joins": 1}
    if kind == "member_left":
        kicked = event.member_left.reason == events_pb2.LEAVE_REASON_KICKED
        return {"leaves": 1, "kicks": 1} if kicked else {"leaves": 1}
    if kind == "member_checked_in":
        return {"checkins": 1}
    if kind == "auto_replied":
        return {"autoreplies": 1}
    if kind == "member_welcomed":
        return {"welcomes": len(event.member_welcomed.members)}
    if kind == "order_placed":
        return {"orders": 1, "order_amount": event.order_placed.amount.minor}
    return None


def contribution(event: events_pb2.Event, tz: ZoneInfo) -> Contribution | None:
    """The event's share of its group's day, or None for events these counters do not count."""
    counts = _group_counts(event)
    if counts is None:
        return None
    poster = event.message_posted.member.id if "messages" in counts else ""
    day = occurred_at(event).astimezone(tz).date()
    return _group_day(event.tenant_id, event.group_id, day, event.event_id, counts, poster)


def contributions(events: Iterable[events_pb2.Event], tz: ZoneInfo) -> list[Contribution]:
    found = (contribution(e, tz) for e in events)
    return [c for c in found if c is not None]


# What each kind of event adds to its tenant's day; totals are these added up over the days.
_TENANT_COUNTS = {
    "message_posted": "messages_total",
    "member_joined": "members_new",
    "member_left": "members_left",
    "group_created": "groups_new",
    "group_dismissed": "groups_dismissed",
}


def tenant_contributions(
    event: events_pb2.Event, partition: int, tz: ZoneInfo
) -> list[Contribution]:
    """The event's shares of its tenant's day: itself, and for a message the first message of
    its member and of its group that day (each claimed once a day, in whichever partition)."""
    kind = event.WhichOneof("payload") or ""
    if kind not in _TENANT_COUNTS:
        return []
    tenant, day = event.tenant_id, occurred_at(event).astimezone(tz).date()
    doc_id = tenant_day_id(tenant, day, partition)
    fields: dict[str, str | int] = {
        "tenant_id": tenant,
        "date": day.isoformat(),
        "partition": partition,
    }

    def share(claim: str, name: str, lasting: bool = False) -> Contribution:
        return Contribution(doc_id, f"{tenant}:{claim}", fields, {name: 1}, lasting=lasting)

    shares = [share(f"{event.event_id}:day", _TENANT_COUNTS[kind])]
    if kind == "message_posted":
        shares.append(share(f"active:{day}:{event.group_id}", "groups_with_messages", True))
        if member := event.message_posted.member.id:
            shares.append(share(f"posted:{day}:{member}", "members_posted", True))
    return shares
