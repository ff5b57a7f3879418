"""Campaign's blacklist projection without I/O: what each decision says of its member."""

from __future__ import annotations

from datetime import UTC, datetime

from services.campaign.blacklist import listing_changes
from services.gen.shequn.v1 import decisions_pb2


def test_each_decision_says_whether_its_member_is_listed_after_it() -> None:
    at = datetime(2026, 12, 2, 8, tzinfo=UTC)
    kicked = decisions_pb2.Decision(tenant_id="t", member_id="u-1", rule="ad", blacklisted=True)
    kicked.decided_at.FromDatetime(at)
    unbanned = decisions_pb2.Decision(tenant_id="t", member_id="u-1", rule="unban")
    unbanned.decided_at.FromDatetime(at)
    no_member = decisions_pb2.Decision(tenant_id="t", rule="dedupe")
    no_member.decided_at.FromDatetime(at)
    [listed, lifted] = listing_changes([kicked, unbanned, no_member])
    assert (listed._id, listed.at, listed.fields) == ("t:u-1", at, {"blacklisted": True})
    assert lifted.fields == {"blacklisted": False}
