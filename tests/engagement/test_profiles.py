"""Profiles are written by two consumers: replies' tags by the one that answers, activity and
the rest by the one that rolls profiles up. Either may come first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.engagement.activity import SEEN_EVERY, activity_updates, add_tags
from services.gen.shequn.v1 import common_pb2
from services.runtime.envelope import Event, new_event
from services.runtime.store import client, write_when_changed
from tests.conftest import Stack

AT = datetime(2026, 12, 1, 4, tzinfo=UTC)


def _said(member: str) -> Event:
    event = new_event("e-1", "t-1", "g-1", common_pb2.PLATFORM_SIM, AT, AT)
    event.message_posted.member.id, event.message_posted.member.name = member, "小王"
    return event


async def test_a_tag_given_before_the_profile_is_made_is_kept_by_it(stack: Stack) -> None:
    mongo = client(stack.mongo)
    profiles = mongo["shequn_test"][f"profiles_{uuid.uuid4().hex}"]
    try:
        await add_tags(profiles, [("t-1", "u-1", "问价")])
        await write_when_changed(profiles, activity_updates([_said("u-1")]), SEEN_EVERY)
        await add_tags(profiles, [("t-1", "u-1", "已购"), ("t-1", "u-1", "问价")])
        doc = await profiles.find_one({"_id": "t-1:u-1"})
    finally:
        await mongo.close()
    assert doc is not None
    assert (doc["tenant_id"], doc["member_id"], doc["name"]) == ("t-1", "u-1", "小王")
    assert doc["tags"] == ["问价", "已购"]
