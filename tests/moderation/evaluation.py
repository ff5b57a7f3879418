"""Detection speed and quality, for `make bench` (figures printed, not asserted)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from random import Random

from services.moderation.detect.content import AD_CHECKS, ContentChecks, Message
from services.moderation.detect.ruleset import Ruleset

EVAL = Path(__file__).parent.parent / "data" / "moderation_eval.jsonl"
KEYWORDS = 10_000
TARGET_PER_SECOND = 50_000


def label_of(checks: ContentChecks, text: str) -> str:
    """The class detection gives a message: abuse, ad or normal."""
    hits = {a.check for a in checks.check(Message(text)) if a.hit}
    if "abuse" in hits:
        return "abuse"
    if hits & AD_CHECKS or "banned_keyword" in hits:
        return "ad"
    return "normal"


def _keywords(count: int) -> list[str]:
    rng = Random(20261122)
    # Random 2-4 character words from the common CJK range, like a large tenant's banned list.
    return [
        "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 4)))
        for _ in range(count)
    ]


def _rate(checks: ContentChecks, texts: list[str], seconds: float = 3.0) -> float:
    for text in texts:  # warm the caches, as a running service has them
        checks.check(Message(text))
    rounds, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for text in texts:
            checks.check(Message(text))
        rounds += 1
    return rounds * len(texts) / (time.perf_counter() - started)


def load_eval() -> list[dict[str, str]]:
    return [json.loads(line) for line in EVAL.read_text().splitlines() if line.strip()]


def bench_detection() -> None:
    rows = load_eval()
    texts = [r["text"] for r in rows]
    built = time.perf_counter()
    checks = ContentChecks(Ruleset(banned_keywords=_keywords(KEYWORDS)))
    built = time.perf_counter() - built
    normal = [r["text"] for r in rows if r["label"] == "normal"]
    print(f"detection          {KEYWORDS:,} keywords, ruleset compiled in {built * 1000:.0f} ms")
    for name, sample in (("whole evaluation set", texts), ("its normal chat only", normal)):
        rate = _rate(checks, sample)
        print(
            f"  {name:<22} {rate:>9,.0f} messages/s on one core "
            f"(target {TARGET_PER_SECOND:,}: ratio {rate / TARGET_PER_SECOND:.2f})"
        )

    default = ContentChecks(Ruleset())
    confusion = Counter((r["label"], label_of(default, r["text"])) for r in rows)
    print(f"evaluation set     {len(rows)} messages ({EVAL.name}), default zh-CN ruleset")
    print("  class    precision  recall   n")
    for label in ("ad", "abuse", "normal"):
        true_positive = confusion[(label, label)]
        predicted = sum(n for (_, got), n in confusion.items() if got == label)
        actual = sum(n for (want, _), n in confusion.items() if want == label)
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        print(f"  {label:<8} {precision:9.3f} {recall:7.3f} {actual:4d}")
    chat = sum(n for (want, _), n in confusion.items() if want == "normal")
    flagged = sum(n for (want, got), n in confusion.items() if want == "normal" and got != "normal")
    print(f"  false positives on normal chat: {flagged}/{chat} = {flagged / max(chat, 1):.1%}")
