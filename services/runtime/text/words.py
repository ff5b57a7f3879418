"""Many words found in a text in one pass: an Aho-Corasick automaton (pyahocorasick) over the
normalized form of each word (`normalize.keyword`). A word is found anywhere in a message, or,
marked `whole`, only as the whole message. ASCII words match only as whole words ("sb" is not
found in "usb"). Each word carries a tag (which list or rule it belongs to); words that
normalize alike are found together, each with its own tag."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import ahocorasick

from services.runtime.text import normalize
from services.runtime.text.normalize import Normalized

T = TypeVar("T")


@dataclass(frozen=True)
class Found(Generic[T]):
    tag: T
    start: int  # the span in the normalized text
    end: int


def _bytes(text: str) -> str:
    """UTF-8 bytes as a str of code points below 256. The automaton runs over these: with
    Chinese keywords its nodes would otherwise have thousands of children, which
    pyahocorasick searches one by one (measured: 25 times slower at 10,000 keywords)."""
    return text.encode().decode("latin-1")


class Words(Generic[T]):
    def __init__(self, words: Iterable[tuple[str, bool, T]]) -> None:
        """`words`: (word, whole, tag). Words that normalize to nothing are left out."""
        self.whole: dict[str, list[T]] = {}
        anywhere: dict[str, list[T]] = {}
        for word, whole, tag in words:
            if key := normalize.keyword(word):
                (self.whole if whole else anywhere).setdefault(key, []).append(tag)
        self.automaton: ahocorasick.Automaton | None = None
        if anywhere:
            self.automaton = ahocorasick.Automaton()
            for key, tags in anywhere.items():
                self.automaton.add_word(_bytes(key), (key, tags))
            self.automaton.make_automaton()

    def find(self, text: Normalized) -> list[Found[T]]:
        """What occurs in `text` (from `normalize.compact`), in the order found."""
        found = [Found(tag, 0, len(text.text)) for tag in self.whole.get(text.text, ())]
        if self.automaton is None:
            return found
        encoded = text.text.encode()
        for end_byte, (key, tags) in self.automaton.iter(encoded.decode("latin-1")):
            start = len(encoded[: end_byte + 1 - len(key.encode())].decode())
            end = start + len(key)
            if key.isascii() and not _standalone(text.text, start, end):
                continue
            found.extend(Found(tag, start, end) for tag in tags)
        return found


def _standalone(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    return not (before.isascii() and before.isalnum()) and not (after.isascii() and after.isalnum())
