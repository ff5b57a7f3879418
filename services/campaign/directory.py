"""The group directory: every group's name, owner and status, which SOP schedules and
broadcasts select from (dismissed groups are skipped). Each field keeps its own clock, so a
late name change cannot undo a newer owner change."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.envelope import occurred_at
from services.runtime.store import LatestWins

GROUPS = "groups"


def _change(
    event: events_pb2.Event, clock: str, at: datetime, fields: dict[str, Any]
) -> LatestWins:
    return LatestWins(
        f"{event.tenant_id}:{event.group_id}",
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
    changes = []
    for event in events:
        at = occurred_at(event)
        kind = event.WhichOneof("payload")
        if kind == "group_created":
            info = event.group_created.group
            changes.append(_change(event, "status_at", at, {"status": "active"}))
            changes.append(_change(event, "name_at", at, {"name": info.name}))
            changes.append(_change(event, "owner_at", at, {"owner_id": info.owner_id}))
        elif kind == "group_updated":
            info, changed = event.group_updated.group, set(event.group_updated.changes)
            if events_pb2.GROUP_CHANGE_NAME in changed:
                changes.append(_change(event, "name_at", at, {"name": info.name}))
            if events_pb2.GROUP_CHANGE_OWNER in changed:
                changes.append(_change(event, "owner_at", at, {"owner_id": info.owner_id}))
            if events_pb2.GROUP_CHANGE_NOTICE in changed:
                changes.append(_change(event, "notice_at", at, {"notice": info.notice}))
        elif kind == "group_dismissed":
            changes.append(_change(event, "status_at", at, {"status": "dismissed"}))
    return changes
