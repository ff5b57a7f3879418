"""The group directory as events tell it, without I/O: which fields each event sets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.gen.shequn.v1 import common_pb2, events_pb2
from services.runtime.envelope import new_event
from services.runtime.projections import directory_changes

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _created(**group: Any) -> events_pb2.Event:
    event = new_event("e-1", "t-1", "g-1", common_pb2.PLATFORM_SIM, NOW, NOW)
    event.group_created.group.CopyFrom(events_pb2.GroupInfo(**group))
    return event


def _updated(changes: list[events_pb2.GroupChange.ValueType], **group: Any) -> events_pb2.Event:
    event = new_event("e-1", "t-1", "g-1", common_pb2.PLATFORM_SIM, NOW, NOW)
    event.group_updated.group.CopyFrom(events_pb2.GroupInfo(**group))
    event.group_updated.changes.extend(changes)
    return event


TAGS = events_pb2.GROUP_CHANGE_TAGS


@pytest.mark.parametrize(
    ("event", "tags"),
    [
        (_updated([TAGS], tags=["vip", "春季", "vip"]), ["vip", "春季"]),
        (_updated([TAGS], name="福利1群"), []),  # the complete new set: none
        (_updated([events_pb2.GROUP_CHANGE_NAME], name="福利1群", tags=["vip"]), None),
        (_created(name="福利1群", tags=["春季"]), ["春季"]),
        (_created(name="福利1群"), None),  # unknown, not cleared
    ],
)  # fmt: skip
def test_tags_are_set_by_a_tags_change_with_their_own_clock(
    event: events_pb2.Event, tags: list[str] | None
) -> None:
    found = {c.clock: dict(c.fields) for c in directory_changes([event])}
    assert found.get("tags_at") == (None if tags is None else {"tags": tags})
