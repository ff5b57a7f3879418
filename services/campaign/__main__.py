"""Campaign: `python -m services.campaign`."""

from __future__ import annotations

from services.campaign.directory import GROUPS, directory_changes
from services.runtime.envelope import projection
from services.runtime.service import Runtime, ServiceParts, run


def build(rt: Runtime) -> ServiceParts:
    return ServiceParts(
        consumers=[projection("campaign", rt.settings, rt.store[GROUPS], directory_changes)]
    )


if __name__ == "__main__":
    run("campaign", build)
