"""Campaign: `python -m services.campaign`."""

from __future__ import annotations

from services.runtime.envelope import projection
from services.runtime.projections import directory_changes
from services.runtime.service import Runtime, ServiceParts, run

# The group directory that SOP schedules and broadcasts select from (dismissed groups skipped).
GROUPS = "groups"


def build(rt: Runtime) -> ServiceParts:
    return ServiceParts(
        consumers=[projection("campaign", rt.settings, rt.store[GROUPS], directory_changes)]
    )


if __name__ == "__main__":
    run("campaign", build)
