"""Campaign: `python -m services.campaign`."""

from __future__ import annotations

from collections.abc import Sequence

from services.campaign import api, broadcasts, coupons, groups, grpc_api, livecodes, sops
from services.campaign.blacklist import Blacklist
from services.campaign.broadcasts import Broadcasts
from services.campaign.coupons import Coupons
from services.campaign.groups import Groups
from services.campaign.livecodes import LiveCodes
from services.campaign.operations import Operations
from services.campaign.sops import Schedules
from services.gen.shequn.v1.actions_pb2 import ActionResult
from services.gen.shequn.v1.decisions_pb2 import Decision
from services.runtime.consumer import Record
from services.runtime.envelope import Event, decisions_consumer, events_consumer, results_consumer
from services.runtime.ratelimit import TokenBuckets
from services.runtime.service import Runtime, ServiceParts, periodic, run


def build(rt: Runtime) -> ServiceParts:
    blacklist = Blacklist(rt.store)
    given = Coupons(rt.store, blacklist)
    codes = LiveCodes(rt.store, rt.producer, rt.settings)
    directory = Groups(rt.store)
    sent = Broadcasts(rt.store, rt.producer, rt.settings, directory)
    schedules = Schedules(rt.store, rt.producer, rt.settings, directory)

    async def follow(records: Sequence[Record[Event]]) -> None:
        events = [r.value for r in records]
        await directory.record(events)
        await given.redeemed(events)
        await given.entry(events)
        await codes.follow(events)

    async def decided(records: Sequence[Record[Decision]]) -> None:
        await blacklist.record([r.value for r in records])

    async def delivered(records: Sequence[Record[ActionResult]]) -> None:
        results = [r.value for r in records]
        await sent.delivered(results)
        await schedules.delivered(results)

    scans = rt.settings.livecode_scans_per_second
    per_address = rt.settings.livecode_scans_per_address
    ops = Operations(
        directory,
        given,
        codes,
        sent,
        schedules,
        rt.settings,
        per_code=TokenBuckets(scans, 2 * scans),
        per_address=TokenBuckets(per_address, 20),
    )
    return ServiceParts(
        indexes=[
            *groups.INDEXES,
            *coupons.INDEXES,
            *livecodes.INDEXES,
            *broadcasts.INDEXES,
            *sops.INDEXES,
        ],
        routers=[api.router],
        provides=[ops],
        grpc=[grpc_api.service(ops, rt.auth)],
        consumers=[
            events_consumer("campaign", rt.settings, follow),
            results_consumer("campaign-results", rt.settings, delivered),
            decisions_consumer("campaign-decisions", rt.settings, decided),
        ],
        background=[
            periodic("reservation expiry", 5.0, codes.expire),
            periodic("sop sweep", 1.0, schedules.sweep),
        ],
    )


if __name__ == "__main__":
    run("campaign", build)
