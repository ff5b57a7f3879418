"""Campaign: `python -m services.campaign`."""

from __future__ import annotations

from collections.abc import Sequence

from services.campaign import api, coupons, grpc_api, livecodes
from services.campaign.coupons import Coupons
from services.campaign.livecodes import LiveCodes
from services.campaign.operations import Operations
from services.runtime.consumer import Record
from services.runtime.envelope import Event, events_consumer
from services.runtime.projections import directory_changes
from services.runtime.ratelimit import TokenBuckets
from services.runtime.service import Runtime, ServiceParts, periodic, run
from services.runtime.store import write_latest

# The group directory that SOP schedules and broadcasts select from (dismissed groups skipped).
GROUPS = "groups"


def build(rt: Runtime) -> ServiceParts:
    given = Coupons(rt.store)
    codes = LiveCodes(rt.store, rt.producer, rt.settings)

    async def follow(records: Sequence[Record[Event]]) -> None:
        events = [r.value for r in records]
        await write_latest(rt.store[GROUPS], directory_changes(events))
        await given.redeemed(events)
        await given.entry(events)
        await codes.follow(events)

    scans = rt.settings.livecode_scans_per_second
    per_address = rt.settings.livecode_scans_per_address
    ops = Operations(
        given,
        codes,
        rt.settings,
        per_code=TokenBuckets(scans, 2 * scans),
        per_address=TokenBuckets(per_address, 20),
    )
    return ServiceParts(
        indexes=[*coupons.INDEXES, *livecodes.INDEXES],
        routers=[api.router],
        provides=[ops],
        grpc=[grpc_api.service(ops, rt.auth)],
        consumers=[events_consumer("campaign", rt.settings, follow)],
        background=[periodic("reservation expiry", 5.0, codes.expire)],
    )


if __name__ == "__main__":
    run("campaign", build)
