"""Compiled checks are shared: compiling every word list takes tens of milliseconds, so it must
happen once per distinct ruleset, not once per group."""

from __future__ import annotations

import uuid

from services.moderation.rulesets import Rulesets
from services.runtime.store import client
from tests.conftest import Stack


async def test_groups_and_tenants_with_the_same_ruleset_share_one_compiled_check(
    stack: Stack,
) -> None:
    mongo = client(stack.mongo)
    collection = mongo["shequn_test"][f"rulesets_{uuid.uuid4().hex}"]
    rulesets = Rulesets(collection)
    first, second = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    try:
        await rulesets.put_group(first, "g-strict", {"rename_lock": True})
        groups = {(first, f"g-{i}") for i in range(300)} | {(second, "g-1"), (first, "g-strict")}
        found = await rulesets.checks_for(groups)
        default = found[(first, "g-1")]
        assert all(found[g][1] is default[1] for g in groups if g != (first, "g-strict"))
        strict = found[(first, "g-strict")]
        assert strict[0].rename_lock and not default[0].rename_lock
        assert strict[1] is not default[1]

        # A changed tenant ruleset is compiled again, for every group of the tenant.
        await rulesets.put_tenant(first, default[0].model_copy(update={"ads": False}))
        changed = await rulesets.checks_for({(first, "g-1"), (first, "g-2"), (second, "g-1")})
        assert not changed[(first, "g-1")][0].ads
        assert changed[(first, "g-1")][1] is changed[(first, "g-2")][1] is not default[1]
        assert changed[(second, "g-1")][1] is default[1]
    finally:
        await collection.drop()
        await mongo.close()
