"""Ingestion: `python -m services.ingestion`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from services.gen.shequn.v1 import common_pb2
from services.ingestion import api, grpc_api, platform_api, timeline, webhooks
from services.ingestion.adapters.sim import SIM_GROUPS, SIM_MEMBERS, SimAdapter, sim_state_changes
from services.ingestion.adapters.telegram import TelegramAdapter
from services.ingestion.adapters.wecom import WecomAdapter, WecomApi
from services.ingestion.credentials import CredentialStore
from services.ingestion.delivery import Delivery
from services.ingestion.events import json_schemas
from services.ingestion.intake import INDEXES as INTAKE_INDEXES
from services.ingestion.intake import Intake
from services.ingestion.pacing import PACING, SharedWindows
from services.runtime.consumer import Record
from services.runtime.envelope import Event, events_consumer
from services.runtime.outbound import outbound_client
from services.runtime.ratelimit import TokenBuckets
from services.runtime.service import Database, Runtime, ServiceParts, run
from services.runtime.store import Store, write_latest


def build(rt: Runtime) -> ServiceParts:
    settings = rt.settings
    limiter = TokenBuckets(settings.ingest_rate_per_tenant, settings.ingest_burst_per_tenant)
    intake = Intake(rt.store, rt.producer, settings, limiter)
    credentials = CredentialStore(rt.store, settings.credentials_key)
    # Tenants choose where the platform adapters connect (api_base_url): public addresses only.
    http = outbound_client(allow_private=settings.outbound_allow_private_hosts)
    shared = SharedWindows(rt.store[PACING])
    wecom = WecomApi(credentials, http, settings, shared)

    async def platform_reports(events: list[Event]) -> object:
        # What a platform reports back (the sim platform's doings, WeCom's transfers) is the
        # platform's doing, not the tenant's sending.
        return await intake.accept(events, rate_limited=False)

    # The timeline, written for every event, on a server of its own where one is given.
    own = settings.timeline_url != settings.mongo_url
    timeline_store = Store(settings.timeline_url, rt.store.db.name) if own else rt.store
    entries = timeline_store[timeline.TIMELINE]
    delivery = Delivery(
        rt.store,
        entries,
        rt.producer,
        settings,
        {
            common_pb2.PLATFORM_SIM: SimAdapter(rt.store, platform_reports),
            common_pb2.PLATFORM_TELEGRAM: TelegramAdapter(credentials, http, settings, shared),
            common_pb2.PLATFORM_WECOM: WecomAdapter(wecom, platform_reports),
        },
    )

    async def follow_events(records: Sequence[Record[Event]]) -> None:
        events = [r.value for r in records]
        groups, members = sim_state_changes(events)
        # The sim platform's state together with the timeline, not after it: a kick delivered
        # meanwhile finds the member there sooner.
        await asyncio.gather(
            timeline.record_events(
                entries, events, timedelta(days=settings.timeline_retention_days)
            ),
            write_latest(rt.store[SIM_GROUPS], groups),
            write_latest(rt.store[SIM_MEMBERS], members),
        )

    return ServiceParts(
        indexes=INTAKE_INDEXES,
        databases=[Database(timeline_store, timeline.INDEXES)],
        routers=[api.router, platform_api.router, timeline.router, webhooks.router],
        provides=[intake, credentials, wecom, timeline.Timeline(entries)],
        schemas=json_schemas(),
        grpc=[grpc_api.service(intake, rt.auth)],
        consumers=[
            events_consumer("ingestion", settings, follow_events),
            delivery.consumer(settings),
        ],
        on_stop=[delivery.close, http.aclose],
    )


if __name__ == "__main__":
    run("ingestion", build)
