"""Rulesets in the moderation database: one per tenant and an override per group, kept as
`runtime.overrides` keeps such settings. A tenant without one has the zh-CN defaults. Compiling
the checks (the automaton of every word list) takes tens of milliseconds, so it happens once per
distinct ruleset: groups without an override share their tenant's, and tenants with the same
ruleset (the defaults) share one."""

from __future__ import annotations

from cachetools import LRUCache
from pymongo.asynchronous.collection import AsyncCollection

from services.moderation.detect.content import ContentChecks
from services.moderation.detect.ruleset import Ruleset
from services.runtime.overrides import Overridable
from services.runtime.store import Document

RULESETS = "rulesets"
_COMPILED_KEPT = 256  # distinct rulesets compiled: each holds its automaton


class Rulesets(Overridable[Ruleset]):
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        super().__init__(collection, Ruleset, "ruleset")
        self._compiled: LRUCache[str, ContentChecks] = LRUCache(_COMPILED_KEPT)  # by content

    async def checks_for(
        self, groups: set[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[Ruleset, ContentChecks]]:
        """The effective ruleset of each (tenant, group), and its compiled checks."""
        return {
            group: (ruleset, self._checks(ruleset, content))
            for group, (ruleset, content) in (await self.for_groups(groups)).items()
        }

    def _checks(self, ruleset: Ruleset, content: str) -> ContentChecks:
        checks = self._compiled.get(content)
        if checks is None:
            checks = self._compiled[content] = ContentChecks(ruleset)
        return checks
