"""Engagement: `python -m services.engagement`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from services.engagement import api, asked, games_api, grpc_api, points
from services.engagement import conversations as conversations_io
from services.engagement import lotteries as lotteries_io
from services.engagement import templates as templates_io
from services.engagement import welcomes as welcomes_io
from services.engagement.activity import (
    PROFILES,
    SEEN_EVERY,
    activity_updates,
    add_tags,
    event_tags,
)
from services.engagement.asked import Questions
from services.engagement.autoreplies import AutoReplies
from services.engagement.checkins import Checkins
from services.engagement.conversations import Conversations
from services.engagement.lotteries import Lotteries
from services.engagement.operations import Operations
from services.engagement.payouts import Payouts
from services.engagement.points import Points
from services.engagement.purchases import Purchases
from services.engagement.rewards import Rewards
from services.engagement.settings import SETTINGS, TenantSettings
from services.engagement.templates import Templates, occasions
from services.engagement.welcomes import Welcomes
from services.gen.shequn.v1.actions_pb2 import ActionResult
from services.gen.shequn.v1.decisions_pb2 import Decision
from services.runtime import metrics
from services.runtime.consumer import Pace, Record
from services.runtime.envelope import Event, decisions_consumer, events_consumer, results_consumer
from services.runtime.service import Runtime, ServiceParts, periodic, run
from services.runtime.store import write_when_changed


def build(rt: Runtime) -> ServiceParts:
    metrics.at_zero(metrics.WELCOMES, "single", "combined")
    metrics.at_zero(metrics.AUTOREPLIES, "send_text", "send_link_card")
    metrics.at_zero(metrics.DRAWS, "won", "blank", "sold_out", "insufficient_points")
    ledger = Points(rt.store)
    configured = TenantSettings(rt.store[SETTINGS])
    checkins = Checkins(rt.store, ledger, rt.producer, rt.settings, configured)
    purchases = Purchases(rt.store, configured, rt.producer, rt.settings.topic_events)
    autoreplies = AutoReplies(rt.store, rt.producer, rt.settings, configured)
    welcomes = Welcomes(rt.store, rt.producer, rt.settings, configured)
    templates = Templates(rt.store, rt.producer, rt.settings, configured)
    lotteries = Lotteries(rt.store, ledger)
    questions = Questions(rt.store, ledger, rt.producer, rt.settings, configured)
    conversations = Conversations(rt.store, rt.settings, configured)
    payouts = Payouts(rt.store, rt.producer, rt.settings, configured)
    rewards = Rewards(ledger, payouts)

    async def engage(records: Sequence[Record[Event]]) -> None:
        """What people in the group wait for: replies, welcomes, points, questions."""
        events = [r.value for r in records]
        said = [
            e
            for e in events
            if e.WhichOneof("payload") == "message_posted" and e.message_posted.member.id
        ]

        async def welcome() -> None:
            await welcomes.handle(events)  # records the group names that templates read
            await templates.keep_in_step(occasions(events))

        replied, *_ = await asyncio.gather(
            autoreplies.handle(said),
            checkins.handle(said),
            welcome(),
            questions.handle(said),
            payouts.handle(said),
            rewards.handle(events),
        )
        await add_tags(rt.store[PROFILES], replied)

    async def profile(records: Sequence[Record[Event]]) -> None:
        """What nobody waits on a second for: profiles, tiers, segments; in larger batches."""
        events = [r.value for r in records]
        # Activity first: a new member's profile is made by it, the orders add to it.
        await write_when_changed(rt.store[PROFILES], activity_updates(events), SEEN_EVERY)
        await asyncio.gather(purchases.handle(events), conversations.handle(events))
        await add_tags(rt.store[PROFILES], event_tags(events))

    async def decided(records: Sequence[Record[Decision]]) -> None:
        await welcomes.decided([r.value for r in records])

    async def delivered(records: Sequence[Record[ActionResult]]) -> None:
        results = [r.value for r in records]
        await asyncio.gather(welcomes.delivered(results), templates.delivered(results))

    ops = Operations(
        ledger,
        configured,
        rt.store[PROFILES],
        autoreplies,
        lotteries,
        questions,
        conversations,
        payouts,
        templates,
    )
    return ServiceParts(
        indexes=[
            *points.INDEXES,
            *welcomes_io.INDEXES,
            *templates_io.INDEXES,
            *lotteries_io.INDEXES,
            *asked.INDEXES,
            *conversations_io.INDEXES,
        ],
        routers=[api.router, games_api.router],
        provides=[ops],
        grpc=[grpc_api.service(ops, rt.auth)],
        consumers=[
            events_consumer("engagement", rt.settings, engage),
            events_consumer("engagement-profiles", rt.settings, profile, pace=Pace.ROLLS_UP),
            decisions_consumer("engagement-decisions", rt.settings, decided),
            results_consumer("engagement-results", rt.settings, delivered),
        ],
        background=[
            periodic("welcome sweep", 0.5, welcomes.send_due),
            periodic("draw repair", 5.0, lotteries.repair),
            periodic("question closing", 1.0, questions.close_due),
        ],
    )


if __name__ == "__main__":
    run("engagement", build)
