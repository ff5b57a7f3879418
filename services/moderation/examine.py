"""The pure passes over a batch of events, apart from the consumer's I/O (`pipeline.py`):
which documents the batch needs, each message's verdict and the state each join and rename is
judged against (`examine`, the first pass; `ladder.rule_cases` is the second), and the audit
entries of the decisions. No I/O: the consumer loads what these name and writes what they
return."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from services.gen.shequn.v1 import decisions_pb2, events_pb2
from services.moderation.checks import CheckRequest, check
from services.moderation.detect.behaviour import FloodWatch
from services.moderation.detect.content import ContentChecks, Message
from services.moderation.detect.ruleset import Ruleset
from services.moderation.judge import MemberState, role_of, rule_rename
from services.moderation.ladder import Case
from services.runtime.envelope import occurred_at
from services.runtime.instants import stamp
from services.runtime.projections import group_doc_id, member_doc_id
from services.runtime.store import Document

MESSAGE_KINDS = {
    events_pb2.MESSAGE_KIND_TEXT: "text",
    events_pb2.MESSAGE_KIND_IMAGE: "image",
    events_pb2.MESSAGE_KIND_LINK: "link",
    events_pb2.MESSAGE_KIND_MINI_PROGRAM: "mini_program",
    events_pb2.MESSAGE_KIND_FILE: "file",
    events_pb2.MESSAGE_KIND_RED_PACKET: "red_packet",
}


def message_of(event: events_pb2.Event, qr_codes: tuple[str, ...] = ()) -> Message:
    """What detection needs of a posted message; `qr_codes` are what the edge read from its
    picture."""
    posted = event.message_posted.message
    return Message(
        text=posted.text,
        kind=MESSAGE_KINDS.get(posted.kind, "text"),
        urls=tuple(posted.urls),
        app_id=posted.app_id,
        qr_codes=qr_codes,
    )


def member_state(doc: Document | None) -> MemberState | None:
    """A member record as judging needs it; None for one no longer in the group (or never)."""
    if doc is None or not doc.get("in_group"):
        return None
    joined = doc.get("joined_at")
    role = str(doc.get("role", "")).removeprefix("GROUP_ROLE_").lower()
    return MemberState(
        role=role if role in ("owner", "admin") else "member",
        tags=tuple(doc.get("tags", ())),
        joined_at=datetime.fromtimestamp(joined / 1_000_000, UTC) if joined else None,
    )


def group_name(doc: Document | None) -> str | None:
    return str(doc.get("name", "")) if doc is not None else None


def examine(
    events: list[events_pb2.Event],
    rules: dict[tuple[str, str], tuple[Ruleset, ContentChecks]],
    members: Mapping[str, MemberState | None],
    group_names: Mapping[str, str],
    crossings: dict[tuple[str, str], int],
    qr_codes: dict[str, tuple[str, ...]],
    flood: FloodWatch,
    now: datetime,
) -> list[Case]:
    """The first pass, in order: each message's verdict, and the state each join and
    rename is judged against, as the batch itself changes membership and names."""
    cases = []
    states, names = dict(members), dict(group_names)
    for event in events:
        ruleset, checks = rules[(event.tenant_id, event.group_id)]
        case = Case(event, ruleset)
        kind = event.WhichOneof("payload")
        if kind == "message_posted":
            who, who_said = event.message_posted.member, event.message_posted.message
            state = states.get(member_doc_id(event.tenant_id, event.group_id, who.id))
            member = MemberState(
                role_of(who, state),
                tuple(who.tags) or (state.tags if state else ()),
                state.joined_at if state else None,
            )
            case.verdict = check(
                CheckRequest(
                    group=f"{event.tenant_id}:{event.group_id}",
                    event_id=event.event_id,
                    at=occurred_at(event),
                    message=message_of(event, qr_codes.get(who_said.media_url, ())),
                    member_id=who.id,
                    member=member,
                    ruleset=ruleset,
                    content=checks,
                    groups_with_same_text=crossings.get((event.tenant_id, event.event_id), 0),
                    flood=flood,
                )
            )
        elif kind == "member_joined":
            joined = event.member_joined
            case.inviter = states.get(
                member_doc_id(event.tenant_id, event.group_id, joined.inviter.id)
            )
            states[member_doc_id(event.tenant_id, event.group_id, joined.member.id)] = MemberState(
                role_of(joined.member, None), tuple(joined.member.tags), occurred_at(event)
            )
        elif kind == "member_left":
            left = event.member_left.member.id
            states[member_doc_id(event.tenant_id, event.group_id, left)] = None
        elif kind == "group_updated":
            key = group_doc_id(event.tenant_id, event.group_id)
            updated = event.group_updated
            actor = states.get(member_doc_id(event.tenant_id, event.group_id, updated.actor.id))
            case.ruling = rule_rename(event, ruleset, actor, names.get(key, ""), now)
            # Only a name change renames: a tags change may carry the name unchanged.
            renamed = events_pb2.GROUP_CHANGE_NAME in updated.changes and updated.group.name
            if renamed and case.ruling is None:
                names[key] = updated.group.name
        elif kind == "group_created":
            names[group_doc_id(event.tenant_id, event.group_id)] = event.group_created.group.name
        cases.append(case)
    return cases


def members_concerned(events: list[events_pb2.Event]) -> set[str]:
    """The membership documents a batch is judged against: posters, newcomers and inviters,
    and whoever renamed a group."""
    ids = set()
    for e in events:
        kind = e.WhichOneof("payload")
        if kind in ("message_posted", "member_joined"):
            ids.add(member_doc_id(e.tenant_id, e.group_id, getattr(e, kind).member.id))
        if kind == "member_joined" and e.member_joined.inviter.id:
            ids.add(member_doc_id(e.tenant_id, e.group_id, e.member_joined.inviter.id))
        if kind == "group_updated" and e.group_updated.actor.id:
            ids.add(member_doc_id(e.tenant_id, e.group_id, e.group_updated.actor.id))
    return ids


def people_of(events: list[events_pb2.Event]) -> set[str]:
    """The members whose blacklist entry and violations a batch may need: posters and
    newcomers, as "{tenant}:{member}"."""
    return {
        f"{e.tenant_id}:{getattr(e, kind).member.id}"
        for e in events
        if (kind := e.WhichOneof("payload")) in ("message_posted", "member_joined")
    }


def audit_entry(d: decisions_pb2.Decision) -> Document:
    return {
        "_id": f"{d.tenant_id}:{d.decision_id}",
        "tenant_id": d.tenant_id,
        "group_id": d.group_id,
        "member_id": d.member_id,
        "event_id": d.event_id,
        "rule": d.rule,
        "check": d.check,
        "evidence": d.evidence,
        "span": [d.span_start, d.span_end] if d.span_start >= 0 else None,
        "penalty": decisions_pb2.Decision.Penalty.Name(d.penalty).removeprefix("PENALTY_").lower(),
        "violation_number": d.violation_number,
        "blacklisted": d.blacklisted,
        "decided_at": stamp(d.decided_at.ToDatetime(UTC)),
        "explanation": d.explanation_json,
        "appeal": None,
    }
