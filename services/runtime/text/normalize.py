"""Text normalization for matching, keeping the way back to the original text.

Evasions that normalization undoes: full-width letters and digits (ＶＸ, １３８), circled and
other compatibility forms (①), traditional characters (領取 → 领取, with OpenCC), case (VX),
and anything put between the characters of a word — spaces, punctuation, emoji, zero-width
characters ("加 微 信", "加.微.信", "加😀微😀信"). `compact()` keeps only letters and digits
for keyword matching; `light()` keeps the punctuation that URLs and ids need.

Both return the normalized text and, for each of its characters, the index of the original
character it came from, so a match can be reported as a span of what was actually sent. The
common case — normalization changes no lengths — takes a fast path of whole-string operations."""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right

import opencc

_T2S = opencc.OpenCC("t2s")
# Characters that stand for digits in evasive phone numbers, beyond what NFKC maps.
_DIGITS = str.maketrans(
    {
        **{c: str(i) for i, c in enumerate("零一二三四五六七八九")},
        "幺": "1",
        **{c: str(i) for i, c in enumerate("〇壹贰叁肆伍陆柒捌玖")},
        **{c: str(i) for i, c in enumerate("➓❶❷❸❹❺❻❼❽❾")},
        **{c: str(i) for i, c in enumerate("⓿➀➁➂➃➄➅➆➇➈")},
        "o": "0", "O": "0", "l": "1", "I": "1", "|": "1",
    }
)  # fmt: skip
# Invisible characters, and the parts of keycap emoji (1️⃣) that are not the digit.
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad\ufe0f\u20e3]")
_WORD_RUNS = re.compile(r"[^\W_]+")
_NON_WORD = re.compile(r"[\W_]+")


class Normalized:
    """Normalized text and the way back: `index(i)` is the original index of `text[i]`."""

    __slots__ = ("_runs", "base", "origin", "text")

    def __init__(
        self, text: str, origin: tuple[int, ...] | None = None, base: Normalized | None = None
    ) -> None:
        self.text = text
        self.origin = origin  # per character; None: the same as in `base`, or as the original
        self.base = base  # when set, `text` is `base.text` with non-word characters removed
        self._runs: tuple[list[int], list[int]] | None = None

    def index(self, i: int) -> int:
        if self.base is not None:
            starts, base_starts = self._word_runs()
            k = bisect_right(starts, i) - 1
            return self.base.index(base_starts[k] + i - starts[k])
        return i if self.origin is None else self.origin[i]

    def _word_runs(self) -> tuple[list[int], list[int]]:
        """Computed on first use, which only a match needs."""
        if self._runs is None:
            assert self.base is not None
            starts: list[int] = []
            base_starts: list[int] = []
            at = 0
            for match in _WORD_RUNS.finditer(self.base.text):
                starts.append(at)
                base_starts.append(match.start())
                at += match.end() - match.start()
            self._runs = (starts, base_starts)
        return self._runs

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span [start, end) of normalized characters [start, end)."""
        return self.index(start), self.index(end - 1) + 1


def _simplified(text: str) -> str:
    converted: str = _T2S.convert(text)
    if len(converted) == len(text):
        return converted
    # A phrase conversion changed the length: convert character by character instead.
    return "".join(c2 if len(c2 := _T2S.convert(c)) == 1 else c for c in text)


def light(text: str) -> Normalized:
    """Full-width → half-width, compatibility forms, case, traditional → simplified, no
    zero-width characters; punctuation and spaces stay."""
    if _ZERO_WIDTH.search(text):
        kept = [(c, i) for i, c in enumerate(text) if not _ZERO_WIDTH.match(c)]
        inner = light("".join(c for c, _ in kept))
        return Normalized(
            inner.text, tuple(kept[inner.index(i)][1] for i in range(len(inner.text)))
        )
    folded = unicodedata.normalize("NFKC", text).casefold()
    if len(folded) == len(text):
        return Normalized(_simplified(folded))
    chars: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        for piece in unicodedata.normalize("NFKC", char).casefold():
            chars.append(piece)
            origin.append(i)
    return Normalized(_simplified("".join(chars)), tuple(origin))


def compact(text: str | Normalized) -> Normalized:
    """Letters and digits of `light(text)` only: what keywords are matched against."""
    lightened = text if isinstance(text, Normalized) else light(text)
    kept = _NON_WORD.sub("", lightened.text)
    if len(kept) == len(lightened.text):
        return lightened
    return Normalized(kept, base=lightened)


def keyword(text: str) -> str:
    """A configured keyword in the form it is matched in."""
    return compact(text).text


def digits(text: str) -> str:
    """Digit look-alikes (Chinese numerals, circled digits, o/l) as digits: for phone numbers."""
    return text.translate(_DIGITS)
