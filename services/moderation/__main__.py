"""Moderation: `python -m services.moderation`."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from services.runtime.envelope import projection
from services.runtime.projections import membership_changes
from services.runtime.service import Runtime, ServiceParts, run
from services.runtime.store import Indexes

# Who is in which group, with role and join time: what probation, the invite policy and the
# blacklist will be judged against.
MEMBERS = "members"
INDEXES = [Indexes(MEMBERS, [IndexModel([("tenant_id", ASCENDING), ("member_id", ASCENDING)])])]


def build(rt: Runtime) -> ServiceParts:
    return ServiceParts(
        indexes=INDEXES,
        consumers=[projection("moderation", rt.settings, rt.store[MEMBERS], membership_changes)],
    )


if __name__ == "__main__":
    run("moderation", build)
