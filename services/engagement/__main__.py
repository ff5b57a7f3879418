"""Engagement: `python -m services.engagement`."""

from __future__ import annotations

from services.engagement.activity import PROFILES, activity_updates
from services.runtime.envelope import projection
from services.runtime.service import Runtime, ServiceParts, run


def build(rt: Runtime) -> ServiceParts:
    return ServiceParts(
        consumers=[projection("engagement", rt.settings, rt.store[PROFILES], activity_updates)]
    )


if __name__ == "__main__":
    run("engagement", build)
