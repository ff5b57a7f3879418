"""Group state as the events tell it — membership and the group directory — for every service
that keeps its own copy (moderation judges members, campaign selects groups, ingestion's sim
platform acts on them). Latest event wins, field by field (see `store.write_latest`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.envelope import occurred_at
from services.runtime.instants import stamp
from services.runtime.store import LatestWins


def member_doc_id(tenant_id: str, group_id: str, member_id: str) -> str:
    return f"{tenant_id}:{group_id}:{member_id}"


def group_doc_id(tenant_id: str, group_id: str) -> str:
    return f"{tenant_id}:{group_id}"


def membership_changes(events: Iterable[events_pb2.Event]) -> list[LatestWins]:
    """Who is in which group, with role, name and join time."""
    changes = []
    for event in events:
        kind = event.WhichOneof("payload")
        if kind == "member_joined":
            member = event.member_joined.member
            fields: dict[str, Any] = {
                "in_group": True,
                "name": member.name,
                "role": common_pb2.GroupRole.Name(member.role),
                "tags": list(member.tags),
                "joined_at": stamp(occurred_at(event)),
                "invited_by": event.member_joined.inviter.id,
            }
        elif kind == "member_left":
            member = event.member_left.member
            fields = {"in_group": False, "left_at": stamp(occurred_at(event))}
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


def _group_change(
    event: events_pb2.Event, clock: str, at: datetime, fields: dict[str, Any]
) -> LatestWins:
    return LatestWins(
        group_doc_id(event.tenant_id, event.group_id),
        clock,
        at,
        fields,
        {
            "tenant_id": event.tenant_id,
            "group_id": event.group_id,
            "platform": common_pb2.Platform.Name(event.platform),
        },
    )


def directory_changes(events: Iterable[events_pb2.Event]) -> list[LatestWins]:
    """Each group's name, owner, notice, series tags and status; each field keeps its own
    clock, so a late name change cannot undo a newer owner change."""
    changes = []
    for event in events:
        at = occurred_at(event)
        kind = event.WhichOneof("payload")
        if kind == "group_created":
            info = event.group_created.group
            created = {"status": "active", "created_at": stamp(at)}
            changes.append(_group_change(event, "status_at", at, created))
            changes.append(_group_change(event, "name_at", at, {"name": info.name}))
            changes.append(_group_change(event, "owner_at", at, {"owner_id": info.owner_id}))
            if info.notice:  # none reported is unknown, not blank
                changes.append(_group_change(event, "notice_at", at, {"notice": info.notice}))
            # Platforms report creation without tags: none given are unknown, not cleared.
            if info.tags:
                changes.append(_group_change(event, "tags_at", at, {"tags": _tags(info)}))
        elif kind == "group_updated":
            # A platform may report that the name changed without the new name (WeCom does):
            # an empty value is unknown, not blank.
            info, changed = event.group_updated.group, set(event.group_updated.changes)
            if events_pb2.GROUP_CHANGE_NAME in changed and info.name:
                changes.append(_group_change(event, "name_at", at, {"name": info.name}))
            if events_pb2.GROUP_CHANGE_OWNER in changed and info.owner_id:
                changes.append(_group_change(event, "owner_at", at, {"owner_id": info.owner_id}))
            if events_pb2.GROUP_CHANGE_NOTICE in changed:
                changes.append(_group_change(event, "notice_at", at, {"notice": info.notice}))
            if events_pb2.GROUP_CHANGE_TAGS in changed:
                changes.append(_group_change(event, "tags_at", at, {"tags": _tags(info)}))
        elif kind == "group_dismissed":
            changes.append(_group_change(event, "status_at", at, {"status": "dismissed"}))
    return changes


def _tags(info: events_pb2.GroupInfo) -> list[str]:
    return sorted(set(info.tags))
