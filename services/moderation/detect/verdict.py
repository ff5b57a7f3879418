"""The verdict on one message: every check's own answer, and the rule the message breaks."""

from __future__ import annotations

from dataclasses import dataclass

from services.moderation.detect.content import Answer, Finding
from services.runtime.wellformed import shortened

FINDINGS_SHOWN = 5  # per check, in the audit record
EVIDENCE_SHOWN = 200  # characters of each finding's evidence there

# When a message breaks several rules, the warning names the first of these.
PRIORITY = ("banned_keyword", "abuse", "url", "qr_code", "wechat_id", "phone", "qq",
            "mini_program", "solicitation", "ad_phrase", "probation", "cross_group",
            "flood")  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    answers: tuple[Answer, ...]
    exempt: tuple[str, ...] = ()  # checks not applied to this member (role or tag exemptions)

    @property
    def findings(self) -> list[Finding]:
        return [f for a in self.answers for f in a.findings]

    @property
    def violation(self) -> Finding | None:
        """The finding the decision is about, or None for a clean message."""
        found = {a.check: a.findings[0] for a in self.answers if a.hit}
        return next((found[c] for c in PRIORITY if c in found), None)

    def explain(self) -> list[dict[str, object]]:
        """Every check's answer, for the audit record. Bounded: a message with a thousand links
        explains itself with the first few and how many more there were, and each evidence is
        shortened, so that the decision fits what its consumers take."""
        return [
            {
                "check": a.check,
                "hit": a.hit,
                "findings": [
                    {
                        "rule": f.rule,
                        "evidence": shortened(f.evidence, EVIDENCE_SHOWN),
                        "span": list(f.span) if f.span else None,
                        "detail": shortened(f.detail, EVIDENCE_SHOWN),
                    }
                    for f in a.findings[:FINDINGS_SHOWN]
                ],
                **(
                    {"more": len(a.findings) - FINDINGS_SHOWN}
                    if len(a.findings) > FINDINGS_SHOWN
                    else {}
                ),
            }
            for a in self.answers
        ]
