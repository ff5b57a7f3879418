"""Ingestion: `python -m services.ingestion`."""

from __future__ import annotations

from services.ingestion import api, grpc_api
from services.ingestion.events import json_schemas
from services.ingestion.intake import Intake, indexes
from services.ingestion.ratelimit import TenantRateLimiter
from services.runtime.service import Runtime, ServiceParts, run


def build(rt: Runtime) -> ServiceParts:
    intake = Intake(rt.store, rt.producer, rt.settings)
    limiter = TenantRateLimiter(
        rt.settings.ingest_rate_per_tenant, rt.settings.ingest_burst_per_tenant
    )
    return ServiceParts(
        indexes=indexes(rt.settings),
        routers=[api.router(intake, limiter)],
        schemas=json_schemas(),
        grpc=[grpc_api.service(intake, limiter, rt.auth)],
    )


if __name__ == "__main__":
    run("ingestion", build)
