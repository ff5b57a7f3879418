"""Campaign: `python -m services.campaign`."""

from __future__ import annotations

from collections.abc import Sequence

from services.campaign import (
    activities,
    api,
    broadcasts,
    coupons,
    fission_api,
    fissions,
    groups,
    groups_api,
    grpc_api,
    handovers,
    livecodes,
    members,
    notices,
    places,
    sops,
)
from services.campaign.activities import Activities
from services.campaign.blacklist import Blacklist
from services.campaign.broadcasts import Broadcasts
from services.campaign.coupons import Coupons
from services.campaign.fissions import Fissions
from services.campaign.group_operations import GroupOperations
from services.campaign.groups import Groups
from services.campaign.handovers import Handovers
from services.campaign.joinways import JoinWays
from services.campaign.ladders import Ladders
from services.campaign.livecodes import LiveCodes
from services.campaign.members import Members
from services.campaign.messages import OUTCOMES
from services.campaign.notices import Notices
from services.campaign.operations import Operations
from services.campaign.sops import Schedules
from services.gen.shequn.v1.actions_pb2 import ActionResult
from services.gen.shequn.v1.decisions_pb2 import Decision
from services.runtime import metrics
from services.runtime.consumer import Pace, Record
from services.runtime.envelope import Event, decisions_consumer, events_consumer, results_consumer
from services.runtime.ratelimit import TokenBuckets
from services.runtime.service import Runtime, ServiceParts, periodic, run


def build(rt: Runtime) -> ServiceParts:
    metrics.at_zero(metrics.LIVECODE_SCANS, "reserved", "full")
    metrics.at_zero(metrics.BROADCAST_DELIVERIES, *OUTCOMES[1:])
    metrics.at_zero(metrics.SOP_SLOTS, "fire", "missed")
    metrics.at_zero(metrics.COUPONS_ISSUED, "entry", "api", "fission")
    blacklist = Blacklist(rt.store)
    given = Coupons(rt.store, blacklist)
    directory = Groups(rt.store)
    codes = LiveCodes(
        rt.store, rt.producer, rt.settings, JoinWays(rt.store, rt.producer, rt.settings, directory)
    )
    sent = Broadcasts(rt.store, rt.producer, rt.settings, directory)
    seen = Members(rt.store)
    schedules = Schedules(rt.store, rt.producer, rt.settings, directory, seen)
    tasks = Fissions(rt.store, rt.producer, rt.settings, codes, given, blacklist, seen)
    activity = Activities(rt.store, rt.producer, rt.settings, directory)
    handing = Handovers(rt.store, rt.producer, rt.settings, directory)
    noticed = Notices(rt.store, rt.producer, rt.settings, directory)
    ladders = Ladders(rt.store, rt.producer, rt.settings, (directory, codes, seen, blacklist))

    async def follow(records: Sequence[Record[Event]]) -> None:
        """Everything campaign learns from the events, in batches gathered for up to 2 s (it
        reads every chat message, for who was seen first when, and nobody waits on it)."""
        events = [r.value for r in records]
        await directory.record(events)
        await seen.record(events)  # first: an invitation is judged with the batch's own events
        await given.redeemed(events)
        await given.entry(events)
        await codes.follow(events)
        await tasks.joined(events)
        await tasks.left(events)
        await noticed.follow(events)
        await ladders.follow(events)

    async def decided(records: Sequence[Record[Decision]]) -> None:
        await blacklist.record([r.value for r in records])

    async def delivered(records: Sequence[Record[ActionResult]]) -> None:
        results = [r.value for r in records]
        await sent.delivered(results)
        await schedules.delivered(results)
        await activity.delivered(results)
        await handing.delivered(results)
        await codes.delivered(results)

    scans = rt.settings.livecode_scans_per_second
    per_address = rt.settings.livecode_scans_per_address
    ops = Operations(
        directory,
        given,
        codes,
        sent,
        schedules,
        tasks,
        rt.settings,
        per_code=TokenBuckets(scans, 2 * scans),
        per_address=TokenBuckets(per_address, 20),
    )
    group_ops = GroupOperations(activity, handing, noticed, ladders)
    return ServiceParts(
        indexes=[
            *groups.INDEXES,
            *coupons.INDEXES,
            *places.INDEXES,
            *livecodes.INDEXES,
            *broadcasts.INDEXES,
            *sops.INDEXES,
            *members.INDEXES,
            *fissions.INDEXES,
            *activities.INDEXES,
            *handovers.INDEXES,
            *notices.INDEXES,
        ],
        routers=[api.router, fission_api.router, groups_api.router],
        provides=[ops, group_ops],
        grpc=[grpc_api.service(ops, group_ops, rt.auth)],
        consumers=[
            events_consumer("campaign", rt.settings, follow, pace=Pace.ROLLS_UP),
            results_consumer("campaign-results", rt.settings, delivered),
            decisions_consumer("campaign-decisions", rt.settings, decided),
        ],
        background=[
            periodic("reservation expiry", 5.0, codes.expire),
            periodic("sop sweep", 1.0, schedules.sweep),
            periodic("fission sweep", 1.0, tasks.sweep),
            periodic("activity group sweep", 1.0, activity.sweep),
            periodic("handover sweep", 1.0, handing.sweep),
        ],
    )


if __name__ == "__main__":
    run("campaign", build)
