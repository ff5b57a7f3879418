"""Rewards campaign leaves to engagement (`reward_earned` events, a fission task completed):
points booked under the event's id, and a task_reward red packet paid from the group's budget
(`payouts.py`), each once, however often the event comes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from services.engagement.payouts import Payouts
from services.engagement.points import Grant, Points
from services.gen.shequn.v1 import events_pb2
from services.runtime import metrics
from services.runtime.envelope import occurred_at
from services.runtime.refusals import Refused

log = logging.getLogger(__name__)


def _payout_id(event_id: str) -> str:
    # A payout id is part of a key: no ':' (event ids have them).
    return "reward-" + hashlib.sha256(event_id.encode()).hexdigest()[:24]


class Rewards:
    def __init__(self, ledger: Points, payouts: Payouts) -> None:
        self.ledger, self.payouts = ledger, payouts

    async def handle(self, events: Sequence[events_pb2.Event]) -> None:
        earned = [
            e
            for e in events
            if e.WhichOneof("payload") == "reward_earned" and e.reward_earned.member.id
        ]
        if not earned:
            return
        grants = [
            Grant(
                e.tenant_id,
                e.reward_earned.member.id,
                f"reward:{e.event_id}",
                int(e.reward_earned.points),
                e.reward_earned.reason or "reward",
                occurred_at(e),
            )
            for e in earned
            if e.reward_earned.points > 0
        ]
        for booked in await self.ledger.apply(grants):
            metrics.REWARDS_EARNED.labels("points").inc(booked.booked)
        for e in earned:
            if not e.reward_earned.red_packet:
                continue
            member = e.reward_earned.member.id
            try:
                await self.payouts.request(
                    e.tenant_id, _payout_id(e.event_id), "task_reward", member, e.group_id
                )
                metrics.REWARDS_EARNED.labels("red_packet").inc()
            except Refused as exc:  # off in the group, over its budget, a group never seen
                metrics.REWARDS_EARNED.labels("red_packet_refused").inc()
                log.warning("reward red packet not paid: %s", exc, extra={"fields": {
                    "tenant_id": e.tenant_id, "event_id": e.event_id,
                }})  # fmt: skip
