"""Welcome windows against the real broker and database: joins out of order, delivered again and
handled by a process started anew give one welcome per window; a claim whose process died is
sent by the next sweep under the same action ids; nobody kicked on arrival is welcomed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from services.engagement.settings import SETTINGS, TenantSettings
from services.engagement.welcomes import INDEXES, WINDOWS, Welcomes
from services.gen.shequn.v1 import actions_pb2, common_pb2, decisions_pb2, events_pb2
from services.runtime.bus import Producer, ensure_topics
from services.runtime.envelope import new_event
from services.runtime.instants import stamp
from services.runtime.settings import Settings
from services.runtime.store import Store
from tests.conftest import Stack
from tests.kafka import produce, read_topic

T = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
SENTINEL = b"end-of-test"


def joined(member: str, seconds: float, event_id: str = "") -> events_pb2.Event:
    at = T + timedelta(seconds=seconds)
    event = new_event(event_id or f"j-{member}", "t", "g", common_pb2.PLATFORM_SIM, at, at)
    event.member_joined.member.id, event.member_joined.member.name = member, f"用户{member}"
    return event


class Harness:
    def __init__(self, stack: Stack, store: Store, producer: Producer, settings: Settings) -> None:
        self.stack, self.store, self.producer, self.settings = stack, store, producer, settings

    def process(self) -> Welcomes:
        """A new engagement process: nothing in memory, only what the database holds."""
        configured = TenantSettings(self.store[SETTINGS])
        return Welcomes(self.store, self.producer, self.settings, configured)

    async def sent(self) -> list[actions_pb2.Action]:
        """Every welcome sent so far."""
        end = SENTINEL + uuid.uuid4().bytes
        await produce(self.stack.kafka, [(self.settings.topic_actions, None, end)])
        found = await read_topic(
            self.stack.kafka, self.settings.topic_actions, 1, lambda r: r.value == end
        )
        everything = await read_topic(
            self.stack.kafka, self.settings.topic_actions, found[0].offset + 1
        )
        return [
            actions_pb2.Action.FromString(r.value)
            for r in everything
            if not r.value.startswith(SENTINEL)
        ]


def later(seconds: float = 3) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


@pytest.fixture
async def harness(stack: Stack) -> AsyncIterator[Harness]:
    topic = f"test-{uuid.uuid4().hex[:8]}.actions"
    # One partition: the sentinel that ends a read comes after everything sent before it.
    settings = Settings(kafka_bootstrap=stack.kafka, topic_actions=topic, kafka_partitions=1)
    await ensure_topics(settings, [topic])
    store = Store(stack.mongo_of("engagement"), f"welcomes_{uuid.uuid4().hex[:8]}")
    await store.create_indexes(INDEXES)
    producer = Producer(settings)
    await producer.start()
    yield Harness(stack, store, producer, settings)
    await producer.stop()
    await store.client.drop_database(store.db.name)
    await store.close()


async def test_joins_out_of_order_and_again_across_a_restart_get_one_welcome(
    harness: Harness,
) -> None:
    first = harness.process()
    await first.handle([joined("a", 10), joined("c", 30)])
    assert await first.sweep(datetime.now(UTC)) == 0, "not due yet: the window is held"
    restarted = harness.process()
    await restarted.handle([joined("b", 0), joined("a", 10)])  # earlier, and a copy
    assert await restarted.sweep(later()) == 1
    assert await restarted.sweep(later()) == 0
    [welcome] = await harness.sent()
    assert welcome.action_id == f"engagement:welcome:t:g:{stamp(T + timedelta(seconds=10))}"
    assert welcome.send_text.text.startswith("欢迎 用户b、用户a、用户c 加入")
    assert list(welcome.send_text.mentions) == ["b", "a", "c"]

    await restarted.handle([joined("c", 30), joined("d", 20), joined("e", 75)])
    assert await restarted.sweep(later()) == 2
    welcomes = await harness.sent()
    assert [list(w.send_text.mentions) for w in welcomes] == [["b", "a", "c"], ["d"], ["e"]]
    assert len({w.action_id for w in welcomes}) == 3


async def test_a_claim_whose_process_died_is_sent_again_under_the_same_ids(
    harness: Harness,
) -> None:
    dead = harness.process()
    await dead.handle([joined("a", 0), joined("b", 1)])
    windows = harness.store[WINDOWS]
    past = stamp(datetime.now(UTC) - timedelta(seconds=1))
    # What the dead process left: its claim, with a lease that has run out.
    await windows.update_many({}, {"$set": {"state": "claimed", "claim": "dead", "due": past}})
    assert await harness.process().sweep(later()) == 1
    welcomes = await harness.sent()
    window = f"t:g:{stamp(T)}"
    assert [w.action_id for w in welcomes] == [
        f"engagement:welcome:{window}:a",
        f"engagement:welcome:{window}:b",
    ]
    doc = await windows.find_one({"_id": window})
    assert doc is not None and doc["state"] == "sent" and "due" not in doc


async def test_nobody_kicked_on_arrival_is_welcomed(harness: Harness) -> None:
    process = harness.process()
    kick = decisions_pb2.Decision(
        decision_id="d1", tenant_id="t", group_id="g", member_id="spammer",
        rule="blacklist", penalty=decisions_pb2.Decision.PENALTY_KICK,
    )  # fmt: skip
    kick.event_occurred_at.FromDatetime(T + timedelta(seconds=5))
    await process.decided([kick])  # the decision may come before the join it is about
    await process.handle([joined("a", 0), joined("spammer", 5), joined("b", 8)])
    left = joined("c", 9, "left-c")
    left.member_left.member.id = "c"  # joined, then gone before the welcome
    await process.handle([joined("c", 9), left])
    assert await process.sweep(later()) == 1
    welcomes = await harness.sent()
    assert [list(w.send_text.mentions) for w in welcomes] == [["a"], ["b"]]
