"""The runtime holds each service to the flows of topology.py, which the cluster's ACLs are
made from; and stops within its shutdown time whatever a consumer is doing."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.runtime.bus import Outgoing, Producer
from services.runtime.service import finish
from services.runtime.settings import Settings
from services.runtime.topology import Undeclared, check_consumers, used, writable

SETTINGS = Settings()


def test_a_service_writes_its_topics_and_its_dead_letter_topics_only() -> None:
    assert writable("analytics", SETTINGS) == {
        "shequn.dlq.analytics",
        "shequn.dlq.analytics-decisions",
    }
    assert "shequn.action-results.v1" in writable("ingestion", SETTINGS)
    assert "shequn.action-results.v1" not in writable("moderation", SETTINGS)


def test_a_service_checks_only_the_topics_it_uses() -> None:
    # Its Kafka user may describe no others: checking all four would fail where topics are
    # Strimzi's to create.
    assert used("analytics", SETTINGS) == ["shequn.decisions.v1", "shequn.events.v1"]
    assert len(used("ingestion", SETTINGS)) == 3


async def test_the_producer_refuses_a_topic_the_service_does_not_write() -> None:
    producer = Producer(SETTINGS, writable("analytics", SETTINGS))  # never started: no broker
    with pytest.raises(Undeclared, match=r"shequn.actions.v1"):
        await producer.send_many([Outgoing("shequn.actions.v1", b"k", b"v")])


def test_consumers_must_be_declared_with_their_topics() -> None:
    check_consumers(
        "campaign",
        [("campaign", ["shequn.events.v1"]), ("campaign-results", ["shequn.action-results.v1"])],
        SETTINGS,
    )
    with pytest.raises(Undeclared, match="campaign-extra"):
        check_consumers("campaign", [("campaign-extra", ["shequn.events.v1"])], SETTINGS)
    with pytest.raises(Undeclared, match="not as declared"):
        check_consumers("campaign", [("campaign", ["shequn.decisions.v1"])], SETTINGS)


async def test_shutdown_gives_up_a_batch_that_takes_longer_than_its_time() -> None:
    async def stuck() -> None:
        await asyncio.sleep(3600)

    async def fails() -> None:
        raise ValueError("broke while stopping")

    async def done() -> None:
        await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(f()) for f in (stuck, fails, done)]
    started = time.monotonic()
    results = await finish(tasks, within=0.2)
    assert time.monotonic() - started < 2
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
