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

_STATUS = {
    "delivered": actions_pb2.DELIVERY_STATUS_DELIVERED,
    "failed": actions_pb2.DELIVERY_STATUS_FAILED,
    "unsupported": actions_pb2.DELIVERY_STATUS_UNSUPPORTED,
}


@dataclass(frozen=True)
class Outcome:
    status: Literal["delivered", "failed", "unsupported"]
    reason: str = ""
    transient: bool = False  # a failure worth another try
    retry_after: float | None = None  # seconds the platform asked us to wait
    message_id: str = ""  # the platform's id of the message posted, when it says
    failed_items: tuple[tuple[str, str], ...] = ()  # (id, reason): parts the platform refused
    link: str = ""  # a URL the action made (a join way's QR code)

    def result_of(self, action: actions_pb2.Action, attempts: int) -> actions_pb2.ActionResult:
        """The action's result as shequn.action-results.v1 carries it, finished now."""
        result = actions_pb2.ActionResult(
            action_id=action.action_id,
            tenant_id=action.tenant_id,
            group_id=action.group_id,
            platform=action.platform,
            action_type=action.WhichOneof("kind") or "",
            source_service=action.source_service,
            status=_STATUS[self.status],
            reason=self.reason,
            attempts=attempts,
            message_id=self.message_id,
            link=self.link,
        )
        for item, reason in self.failed_items:
            result.failed_items.add(id=item, reason=shortened(reason, REASON_CHARACTERS))
        result.finished_at.GetCurrentTime()
        return result


DELIVERED = Outcome("delivered")


def delivered(message_id: object) -> Outcome:
    """Delivered, with the id the platform gave the message posted (if a short one)."""
    found = str(message_id) if isinstance(message_id, int | str) else ""
    return Outcome("delivered", message_id=found if len(found) <= 200 else "")


# A platform's answer is reported, never stored whole: a tenant can point an adapter at a server
# of its own choosing, and what comes back must not become a way to read it.
REASON_CHARACTERS = 300


# What the platforms that post welcomes as they happen answer a welcome template.
ONLY_WECOM = "only WeCom keeps a group welcome template; here welcomes are posted as they happen"
# What the platforms without join ways answer one: their live codes are Shequn's scan page.
NO_JOIN_WAYS = "only WeCom keeps join ways (加入群聊); here a live code is Shequn's scan page"


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
