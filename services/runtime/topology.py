"""Who reads and writes which topic: one table that the runtime holds every service to, and that
the Kafka users' ACLs and the topics in k8s/ are generated from (`make manifests`). A consumer
or a topic written that is not here stops the service at start or fails the send, in
development too, so that a flow missing from the ACLs is found before a cluster refuses it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.runtime.settings import Settings

# The topics by the name of their setting (settings.topic_<name>).
EVENTS, ACTIONS, RESULTS, DECISIONS = "events", "actions", "action_results", "decisions"


@dataclass(frozen=True)
class Flows:
    consumers: Mapping[str, tuple[str, ...]]  # consumer group name → the topics it reads
    writes: tuple[str, ...]  # besides the dead-letter topics of its consumers


SERVICES: dict[str, Flows] = {
    # Intake publishes events (and the sim platform's doings); the platform API sends actions;
    # delivery sends the actions of every service and publishes their results.
    "ingestion": Flows(
        {"ingestion": (EVENTS,), "ingestion-delivery": (ACTIONS,)}, (EVENTS, ACTIONS, RESULTS)
    ),
    "moderation": Flows({"moderation": (EVENTS,)}, (ACTIONS, DECISIONS)),
    "engagement": Flows(
        {
            "engagement": (EVENTS,),
            "engagement-profiles": (EVENTS,),
            "engagement-decisions": (DECISIONS,),
            "engagement-results": (RESULTS,),
        },
        (EVENTS, ACTIONS),
    ),
    "campaign": Flows(
        {"campaign": (EVENTS,), "campaign-results": (RESULTS,), "campaign-decisions": (DECISIONS,)},
        (EVENTS, ACTIONS),
    ),
    "analytics": Flows({"analytics": (EVENTS,), "analytics-decisions": (DECISIONS,)}, ()),
}


class Undeclared(RuntimeError):
    """A service reads or writes a topic that services/runtime/topology.py does not say it does:
    on a cluster its Kafka user would be refused."""


def topic(settings: Settings, name: str) -> str:
    return str(getattr(settings, f"topic_{name}"))


def check_consumers(
    service: str, consumers: Iterable[tuple[str, Iterable[str]]], settings: Settings
) -> None:
    """Each (consumer group name, topics) of the service is declared, with those topics."""
    declared = SERVICES[service].consumers
    for name, topics in consumers:
        if name not in declared:
            raise Undeclared(f"{service} runs consumer {name!r}, not declared in topology.py")
        if sorted(topics) != sorted(topic(settings, t) for t in declared[name]):
            raise Undeclared(
                f"{service}'s consumer {name!r} reads {sorted(topics)}, not as declared"
            )


def writable(service: str, settings: Settings) -> frozenset[str]:
    """The topics the service may write: its own, and its consumers' dead-letter topics."""
    flows = SERVICES[service]
    return frozenset(
        [topic(settings, t) for t in flows.writes]
        + [settings.dlq_topic(name) for name in flows.consumers]
    )


def used(service: str, settings: Settings) -> list[str]:
    """The main topics the service reads or writes: those it creates at start, or, where it
    may not create topics, checks exist (its Kafka user may see no others)."""
    flows = SERVICES[service]
    names = {t for topics in flows.consumers.values() for t in topics} | set(flows.writes)
    return sorted(topic(settings, t) for t in names)
