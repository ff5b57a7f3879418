"""Kafka: topic creation and one producer that every service uses."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import DefaultPartitioner, murmur2
from google.protobuf.message import Message

from services.runtime import metrics
from services.runtime.settings import Settings
from services.runtime.topology import Undeclared
from services.runtime.wellformed import problem

log = logging.getLogger(__name__)
_TOPIC_EXISTS = 36


def group_key(tenant_id: str, group_id: str) -> bytes:
    """The partition key of everything about one group: its events stay in order."""
    return f"{tenant_id}:{group_id}".encode()


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Unconsumable(ValueError):
    """A service was about to produce what its consumers would dead-letter: a bug to fix where
    the message is made, not a message for the dead-letter topic of another service."""


def outgoing(topic: str, key: bytes, message: Message) -> Outgoing:
    """A protobuf message for a topic, checked to be well-formed as its consumers' decoders
    require (`wellformed.problem`: enums, times, string and list bounds, size)."""
    if found := problem(message):
        raise Unconsumable(f"{message.DESCRIPTOR.full_name} for {topic}: {found}")
    return Outgoing(topic, key, message.SerializeToString())


def connection(settings: Settings) -> dict[str, Any]:
    """How each Kafka client of a service reaches the brokers: the bootstrap servers, and on a
    TLS listener the brokers' CA and, for mutual TLS, the service's own certificate (the Secret
    Strimzi makes for its KafkaUser)."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap}
    if settings.kafka_security_protocol == "SSL":
        options["security_protocol"] = "SSL"
        options["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
        )
    return options


def all_topics(settings: Settings) -> list[str]:
    return [
        settings.topic_events,
        settings.topic_actions,
        settings.topic_action_results,
        settings.topic_decisions,
    ]


async def ensure_topics(settings: Settings, topics: Sequence[str]) -> None:
    """Create the topics that do not exist yet; an existing topic is left as it is. Where the
    service may not create topics (an operator owns them), check that they exist instead."""
    admin = AIOKafkaAdminClient(**connection(settings))
    await admin.start()
    try:
        if not settings.kafka_create_topics:
            if missing := sorted(set(topics) - set(await admin.list_topics())):
                raise RuntimeError(
                    f"topics {', '.join(missing)} do not exist, and this service does not create"
                    " topics (SHEQUN_KAFKA_CREATE_TOPICS is off): create them first (on"
                    " Kubernetes, they are KafkaTopic resources in k8s/)"
                )
            return
        response = await admin.create_topics(
            [NewTopic(t, settings.kafka_partitions, settings.kafka_replication) for t in topics]
        )
        for topic, code, message in response.topic_errors:
            if code not in (0, _TOPIC_EXISTS):
                raise RuntimeError(f"cannot create topic {topic}: {message} (code {code})")
    finally:
        await admin.close()


@functools.lru_cache(maxsize=16_384)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_of(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's default partitioner (Kafka's murmur2 of the key, as every Kafka client
    computes it), with each key's hash remembered: keys are groups, and the pure-Python hash of
    every message was 5% of the intake's CPU."""
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    return all_partitions[_key_hash(key) % len(all_partitions)]


class Producer:
    """Writes keyed messages and waits until the broker has them (acks=all)."""

    def __init__(self, settings: Settings, writable: frozenset[str] | None = None) -> None:
        self._writable = writable  # the topics the service may write (topology.py), if held to
        self._producer = AIOKafkaProducer(
            **connection(settings),
            acks="all",
            enable_idempotence=settings.kafka_idempotence,
            linger_ms=2,
            max_batch_size=256 * 1024,
            partitioner=partition_of,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and close; also closes a producer never started (nothing to flush then)."""
        await self._producer.stop()

    async def send_many(self, messages: Iterable[Outgoing]) -> None:
        """Send all, then wait for every acknowledgement; raises if any was not written."""
        batch = list(messages)
        if self._writable is not None and (others := {m.topic for m in batch} - self._writable):
            raise Undeclared(f"writes to {sorted(others)}, not declared in topology.py")
        pending = [
            await self._producer.send(m.topic, m.value, key=m.key, headers=m.headers) for m in batch
        ]
        await asyncio.gather(*pending)
        for topic, count in Counter(m.topic for m in batch).items():
            metrics.PRODUCED.labels(topic).inc(count)

    async def reachable(self) -> bool:
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2)
        except Exception:
            return False
        return True
