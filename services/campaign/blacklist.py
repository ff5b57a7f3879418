"""Campaign's own projection of the tenants' blacklists, from moderation's decisions (never from
its database): blacklisted members get no coupon, reward or invitation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC

from services.gen.shequn.v1 import decisions_pb2
from services.runtime.store import LatestWins, Store, write_latest

BLACKLIST = "blacklist"


def listing_changes(decisions: Iterable[decisions_pb2.Decision]) -> list[LatestWins]:
    """Every decision says whether its member is on the blacklist after it (an unban too)."""
    return [
        LatestWins(
            f"{d.tenant_id}:{d.member_id}",
            "decided_at",
            d.decided_at.ToDatetime(UTC),
            {"blacklisted": d.blacklisted},
            {"tenant_id": d.tenant_id, "member_id": d.member_id},
        )
        for d in decisions
        if d.member_id and d.HasField("decided_at")
    ]


class Blacklist:
    def __init__(self, store: Store) -> None:
        self.listed = store[BLACKLIST]

    async def record(self, decisions: Sequence[decisions_pb2.Decision]) -> None:
        await write_latest(self.listed, listing_changes(decisions))

    async def of(self, tenant_id: str, members: Iterable[str]) -> set[str]:
        """Those of the members on the tenant's blacklist."""
        ids = sorted({f"{tenant_id}:{m}" for m in members})
        found = self.listed.find({"_id": {"$in": ids}}, {"member_id": 1, "blacklisted": 1})
        return {d["member_id"] async for d in found if d.get("blacklisted")}
