"""Who is in which group, with role and join time: what probation, invite policy and the
blacklist will be judged against. Kept from the events topic, latest event wins."""

from __future__ import annotations

from collections.abc import Iterable

from pymongo import ASCENDING, IndexModel

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.envelope import occurred_at
from services.runtime.store import Indexes, LatestWins

MEMBERS = "members"
INDEXES = [Indexes(MEMBERS, [IndexModel([("tenant_id", ASCENDING), ("member_id", ASCENDING)])])]


def member_doc_id(tenant_id: str, group_id: str, member_id: str) -> str:
    return f"{tenant_id}:{group_id}:{member_id}"


def membership_changes(events: Iterable[events_pb2.Event]) -> list[LatestWins]:
    changes = []
    for event in events:
        kind = event.WhichOneof("payload")
        if kind == "member_joined":
            member = event.member_joined.member
            fields = {
                "in_group": True,
                "role": common_pb2.GroupRole.Name(member.role),
                "joined_at": occurred_at(event),
                "invited_by": event.member_joined.inviter.id,
            }
        elif kind == "member_left":
            member = event.member_left.member
            fields = {"in_group": False, "left_at": occurred_at(event)}
        else:
            continue
        changes.append(
            LatestWins(
                member_doc_id(event.tenant_id, event.group_id, member.id),
                "changed_at",
                occurred_at(event),
                fields,
                {"tenant_id": event.tenant_id, "group_id": event.group_id, "member_id": member.id},
            )
        )
    return changes
