"""What each event adds to the counters. Plain code: events in, contributions out; the store
applies each exactly once (`counters`).

Families of counter documents, each changed by one partition's events only, in their order
(what makes counting once cheap, see `counters`):
- group days, `{tenant}:{group}:{day}`: a group's messages, active members, joins, ..., its
  members' messages, invitations and check-in streaks (`talkers.<member>`, ...);
- tenant days, `{tenant}:{day}:{partition}`: the same for the whole tenant (the WeCom statistics
  set), one document per partition of the events topic;
- live-code days, `{tenant}:{day}:{partition}`: each live code's funnel (`codes.<code>.<count>`:
  a range of days is a few documents, however many codes);
- series days, `{tenant}:{day}:{partition}`: the tenant's day again per series tag;
- groups, `{tenant}:{group}`: members now.
Retention and activation are counted on the day of the join (`cohorts`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from services.analytics.cohorts import CohortShare, Joining
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
# Counted per day in group and tenant days alike: the AARRR funnel, retention and campaign ROI.
COHORT_FIELDS = ("activated", "d1_left", "d1_active", "d7_left", "d7_active", "d30_left",
                 "d30_active")  # fmt: skip
MONEY_FIELDS = ("coupon_spend", "red_packet_spend", "attributed_orders", "attributed_amount")
# Per member, as `<map>.<member>`: messages, members brought in, the longest check-in streak.
MEMBER_MAPS = ("talkers", "inviters", "streaks")


def group_day_id(tenant_id: str, group_id: str, day: date) -> str:
    return f"{tenant_id}:{group_id}:{day.isoformat()}"


def tenant_day_id(tenant_id: str, day: date | str, partition: int) -> str:
    return f"{tenant_id}:{day if isinstance(day, str) else day.isoformat()}:{partition:03d}"


def livecode_day_id(tenant_id: str, day: date, partition: int) -> str:
    return f"{tenant_id}:{day.isoformat()}:{partition:03d}"


def map_key(member_id: str) -> str:
    """A member id or a live code as a field name of a map ('.' and '$' would be paths)."""
    return member_id.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def of_map_key(key: str) -> str:
    return key.replace("%24", "$").replace("%2E", ".").replace("%25", "%")


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
    keyed: dict[str, int] = field(default_factory=dict)  # `<map>.<member>`: added
    highest: dict[str, int] = field(default_factory=dict)  # `<map>.<member>`: the highest kept


# Decisions that are not a member breaking a group rule.
NOT_VIOLATIONS = frozenset({"unban", "dedupe", "manual"})


def _group_day(
    tenant_id: str,
    group_id: str,
    day: date,
    claim: str,
    counts: dict[str, int],
    poster: str = "",
    maps: tuple[dict[str, int], dict[str, int]] = ({}, {}),
    lasting: bool = False,
) -> Contribution:
    return Contribution(
        doc_id=group_day_id(tenant_id, group_id, day),
        claim=f"{tenant_id}:{claim}",
        fields={"tenant_id": tenant_id, "group_id": group_id, "date": day.isoformat()},
        counts=counts,
        poster=poster,
        lasting=lasting,
        keyed=maps[0],
        highest=maps[1],
    )


def _member_maps(event: events_pb2.Event) -> tuple[dict[str, int], dict[str, int]]:
    """What the event adds to its day's per-member maps (the leaderboards)."""
    kind = event.WhichOneof("payload")
    if kind == "message_posted" and event.message_posted.member.id:
        return {f"talkers.{map_key(event.message_posted.member.id)}": 1}, {}
    if kind == "member_joined" and event.member_joined.inviter.id:
        return {f"inviters.{map_key(event.member_joined.inviter.id)}": 1}, {}
    if kind == "member_checked_in":
        streak = event.member_checked_in.streak
        return {}, {f"streaks.{map_key(event.member_checked_in.member.id)}": streak}
    return {}, {}


def _money(event: events_pb2.Event) -> dict[str, int]:
    """Spend and attributed revenue, in the minor unit (分)."""
    kind = event.WhichOneof("payload")
    if kind == "coupon_redeemed":
        return {"coupon_spend": event.coupon_redeemed.value.minor}
    if kind == "red_packet_paid":
        return {"red_packet_spend": event.red_packet_paid.amount.minor}
    if kind == "order_placed" and event.order_placed.attribution:
        return {"attributed_orders": 1, "attributed_amount": event.order_placed.amount.minor}
    return {}


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
        return {"orders": 1, "order_amount": event.order_placed.amount.minor, **_money(event)}
    if kind in ("coupon_redeemed", "red_packet_paid"):
        return _money(event)
    return None


def contribution(event: events_pb2.Event, tz: ZoneInfo) -> Contribution | None:
    """The event's share of its group's day, or None for events these counters do not count."""
    counts = _group_counts(event)
    if counts is None:
        return None
    poster = event.message_posted.member.id if "messages" in counts else ""
    day = occurred_at(event).astimezone(tz).date()
    maps = _member_maps(event)
    return _group_day(event.tenant_id, event.group_id, day, event.event_id, counts, poster, maps)


# What each kind of event adds to its tenant's day; totals are these added up over the days.
_TENANT_COUNTS = {
    "message_posted": "messages_total",
    "member_joined": "members_new",
    "member_left": "members_left",
    "group_created": "groups_new",
    "group_dismissed": "groups_dismissed",
    "order_placed": "orders",
}
# Kinds with no count of their own that a tenant's day still adds up.
_TENANT_ALSO = frozenset({"coupon_redeemed", "red_packet_paid", "member_checked_in"})


def tenant_contributions(
    event: events_pb2.Event, partition: int, tz: ZoneInfo
) -> list[Contribution]:
    """The event's shares of its tenant's day: itself, and for a message the first message of
    its member and of its group that day (each claimed once a day, in whichever partition)."""
    kind = event.WhichOneof("payload") or ""
    if kind not in _TENANT_COUNTS and kind not in _TENANT_ALSO:
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

    counts = {_TENANT_COUNTS[kind]: 1} if kind in _TENANT_COUNTS else {}
    counts.update(_money(event))
    if kind == "order_placed":
        counts["order_amount"] = event.order_placed.amount.minor
    keyed, highest = _member_maps(event)
    shares = [
        Contribution(
            doc_id, f"{tenant}:{event.event_id}:day", fields, counts, "", False, keyed, highest
        )
    ]
    if kind == "message_posted":
        shares.append(share(f"active:{day}:{event.group_id}", "groups_with_messages", True))
        if member := event.message_posted.member.id:
            shares.append(share(f"posted:{day}:{member}", "members_posted", True))
    return shares


def cohort_contributions(
    event: events_pb2.Event, shares: list[CohortShare], partition: int, tz: ZoneInfo
) -> dict[str, list[Contribution]]:
    """Cohort shares as contributions to the join day of the group, of the tenant and of the
    live code the member came through, by family."""
    found: dict[str, list[Contribution]] = {"group": [], "tenant": [], "livecode": []}
    tenant = event.tenant_id
    for s in shares:
        day = s.joined.day(tz)
        found["group"].append(
            _group_day(tenant, event.group_id, day, f"{s.claim}:g", s.counts, lasting=s.lasting)
        )
        fields: dict[str, str | int] = {
            "tenant_id": tenant, "date": day.isoformat(), "partition": partition,
        }  # fmt: skip
        found["tenant"].append(
            Contribution(
                tenant_day_id(tenant, day, partition),
                f"{tenant}:{s.claim}:t",
                fields,
                s.counts,
                lasting=s.lasting,
            )
        )
        if s.joined.livecode:
            found["livecode"].append(
                _livecode_day(
                    event,
                    s.joined.livecode,
                    day,
                    partition,
                    f"{s.claim}:l",
                    _invited(s.counts, s.joined),
                    s.lasting,
                )
            )
    return found


def _invited(counts: dict[str, int], joined: Joining) -> dict[str, int]:
    # A live code's funnel keeps the members a fission invite code brought in apart.
    return {f"invited_{k}" if joined.invited else k: n for k, n in counts.items()}


def _livecode_day(
    event: events_pb2.Event,
    livecode: str,
    day: date,
    partition: int,
    claim: str,
    counts: dict[str, int],
    lasting: bool = False,
) -> Contribution:
    fields: dict[str, str | int] = {
        "tenant_id": event.tenant_id, "date": day.isoformat(), "partition": partition,
    }  # fmt: skip
    doc_id = livecode_day_id(event.tenant_id, day, partition)
    keyed = {f"codes.{map_key(livecode)}.{name}": n for name, n in counts.items()}
    claim = f"{event.tenant_id}:{claim}"
    return Contribution(doc_id, claim, fields, lasting=lasting, keyed=keyed)


def livecode_contributions(
    event: events_pb2.Event, partition: int, tz: ZoneInfo, joined: Joining | None = None
) -> list[Contribution]:
    """A live code's scans, joins (`joined`: the join with the live code it came through) and
    fission tasks completed, on their day."""
    kind = event.WhichOneof("payload")
    day = occurred_at(event).astimezone(tz).date()
    if kind == "livecode_scanned":
        scan = event.livecode_scanned
        counts = {"invited_scans" if scan.invite_code else "scans": 1}
        code = scan.livecode
    elif kind == "member_joined" and joined is not None:
        counts, code = _invited({"joins": 1}, joined), joined.livecode
    elif kind == "reward_earned":
        counts, code = {"completed": 1}, event.reward_earned.livecode
    else:
        return []
    if not code:
        return []
    return [_livecode_day(event, code, day, partition, f"{event.event_id}:l", counts)]


# A tenant day's firsts of the day (a group's, a member's): not what a series' reports read.
_DAY_FIRSTS = frozenset({"groups_with_messages", "members_posted"})


def in_series(tenant_day: Contribution, tags: Sequence[str]) -> Contribution | None:
    """A share of a tenant's day again for each series its group is in (`<tag>.<count>`, and
    its inviters), in a document of the same id among the series' days: what a series' reports
    read, one document per day and partition instead of its groups' days."""
    if not tags or _DAY_FIRSTS & tenant_day.counts.keys():
        return None
    keyed: dict[str, int] = {}
    for tag in tags:
        keyed.update({f"{map_key(tag)}.{name}": n for name, n in tenant_day.counts.items()})
        keyed.update({f"{map_key(tag)}.{k}": n for k, n in tenant_day.keyed.items()
                      if k.startswith("inviters.")})  # fmt: skip
    if not keyed:
        return None
    claim = f"{tenant_day.claim}:s"
    return Contribution(tenant_day.doc_id, claim, tenant_day.fields, lasting=tenant_day.lasting,
                        keyed=keyed)  # fmt: skip


def group_members(event: events_pb2.Event) -> Contribution | None:
    """A join or a leave: the group's members now, one more or one fewer."""
    kind = event.WhichOneof("payload")
    if kind not in ("member_joined", "member_left"):
        return None
    tenant, group = event.tenant_id, event.group_id
    return Contribution(
        f"{tenant}:{group}",
        f"{tenant}:{event.event_id}:members",
        {"tenant_id": tenant, "group_id": group},
        {"members": 1 if kind == "member_joined" else -1},
    )
