"""Moderation: `python -m services.moderation`."""

from __future__ import annotations

from services.moderation import api, grpc_api, operations
from services.moderation.operations import Operations
from services.moderation.pictures import Pictures
from services.moderation.pipeline import INDEXES, Moderation
from services.moderation.rulesets import RULESETS, Rulesets
from services.runtime.consumer import Pace
from services.runtime.envelope import events_consumer
from services.runtime.service import Runtime, ServiceParts, run


def build(rt: Runtime) -> ServiceParts:
    rulesets = Rulesets(rt.store[RULESETS])
    pictures = Pictures(rt.settings)
    moderation = Moderation(rt.store, rt.producer, rt.settings, rulesets, pictures)
    ops = Operations(rt.store, rt.producer, rt.settings, moderation)
    return ServiceParts(
        indexes=[*INDEXES, *operations.INDEXES],
        routers=[api.router],
        provides=[rulesets, ops],
        grpc=[grpc_api.service(rulesets, ops, rt.auth)],
        consumers=[
            events_consumer(
                "moderation", rt.settings, moderation.handle, moderation.forget, pace=Pace.REACTS
            )
        ],
        on_stop=[pictures.close],
    )


if __name__ == "__main__":
    run("moderation", build)
