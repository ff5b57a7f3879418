"""Moderation: `python -m services.moderation`."""

from __future__ import annotations

from services.moderation.membership import INDEXES, MEMBERS, membership_changes
from services.runtime.envelope import projection
from services.runtime.service import Runtime, ServiceParts, run


def build(rt: Runtime) -> ServiceParts:
    return ServiceParts(
        indexes=INDEXES,
        consumers=[projection("moderation", rt.settings, rt.store[MEMBERS], membership_changes)],
    )


if __name__ == "__main__":
    run("moderation", build)
