"""Platform adapters: each turns an Action into a call on its platform and says how it went.

An adapter never raises for a platform's refusal: it answers an Outcome — delivered, failed
(transient or not, with the platform's own reason and any wait it asked for) or unsupported
where the platform cannot do the action at all. Retries, rate limits and recording the result
are the delivery loop's job (`services/ingestion/delivery.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from services.gen.shequn.v1 import actions_pb2
from services.runtime.wellformed import shortened


@dataclass(frozen=True)
class Outcome:
    status: Literal["delivered", "failed", "unsupported"]
    reason: str = ""
    transient: bool = False  # a failure worth another try
    retry_after: float | None = None  # seconds the platform asked us to wait


DELIVERED = Outcome("delivered")
# A platform's answer is reported, never stored whole: a tenant can point an adapter at a server
# of its own choosing, and what comes back must not become a way to read it.
REASON_CHARACTERS = 300


def failed(reason: str, *, transient: bool = False, retry_after: float | None = None) -> Outcome:
    return Outcome("failed", shortened(reason, REASON_CHARACTERS), transient, retry_after)


def unsupported(reason: str) -> Outcome:
    return Outcome("unsupported", reason)


class Adapter(Protocol):
    async def wait(self, action: actions_pb2.Action) -> float:
        """Seconds before the platform may be called for this action (its pacing); 0.0 means
        now, and the call is counted. Never sleeps: the delivery schedules the wait."""
        ...

    async def deliver(self, action: actions_pb2.Action) -> Outcome: ...
