"""The sim platform's kicks against the real MongoDB-protocol server: a member whose join is
still on its way is tried again, never refused for good, even when the join lands between the
adapter's two reads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.gen.shequn.v1 import actions_pb2, common_pb2, events_pb2
from services.ingestion.adapters.sim import SimAdapter
from services.runtime.projections import member_doc_id
from services.runtime.store import Store
from tests.conftest import Stack


def kick(member: str) -> actions_pb2.Action:
    action = actions_pb2.Action(
        action_id=f"a-{uuid.uuid4().hex}",
        tenant_id="t",
        group_id="g",
        platform=common_pb2.PLATFORM_SIM,
        source_service="moderation",
    )
    action.kick_member.member_id = member
    return action


class JoinLandsMeanwhile:
    """The members collection, where the member's join is written just after the adapter's
    first look, as the events consumer might."""

    def __init__(self, members: Any) -> None:
        self.members = members

    async def find_one_and_update(self, *args: Any, **kwargs: Any) -> Any:
        found = await self.members.find_one_and_update(*args, **kwargs)
        await self.members.insert_one({"_id": member_doc_id("t", "g", "u1"), "in_group": True})
        return found

    async def find_one(self, *args: Any, **kwargs: Any) -> Any:
        return await self.members.find_one(*args, **kwargs)


@pytest.fixture
async def adapter(stack: Stack) -> AsyncIterator[SimAdapter]:
    store = Store(stack.mongo, f"sim_{uuid.uuid4().hex[:8]}")
    sent: list[events_pb2.Event] = []

    async def emit(events: list[events_pb2.Event]) -> None:
        sent.extend(events)

    yield SimAdapter(store, emit)
    await store.client.drop_database(store.db.name)
    await store.close()


async def test_a_kick_before_the_join_is_known_is_tried_again(adapter: SimAdapter) -> None:
    outcome = await adapter.deliver(kick("u1"))
    assert (outcome.status, outcome.transient) == ("failed", True)


async def test_a_join_landing_between_the_two_reads_is_tried_again_not_refused(
    adapter: SimAdapter,
) -> None:
    members = adapter.members
    adapter.members = JoinLandsMeanwhile(members)  # type: ignore[assignment]
    outcome = await adapter.deliver(kick("u1"))
    assert (outcome.status, outcome.transient) == ("failed", True), outcome.reason
    adapter.members = members
    assert (await adapter.deliver(kick("u1"))).status == "delivered"
    assert (await adapter.deliver(kick("u1"))).transient is False, "kicked: not a member now"
    assert await adapter.members.count_documents({"in_group": True}) == 0
