"""Checks of a message's content: banned keywords, abuse, ads. Each check answers on its own
(`Answer`: its name, whether it hit, and the evidence with its span in the original text), so
that a decision can be explained and audited. Built once per ruleset; checking is pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from services.moderation.detect.lexicon import TLDS
from services.moderation.detect.ruleset import Ruleset
from services.runtime.text import normalize
from services.runtime.text.normalize import Normalized
from services.runtime.text.words import Words

Rule = Literal["keyword", "abuse", "ad", "flood", "cross_group", "probation"]

_URL = re.compile(
    r"(?:https?://|www\.)[^\s<>\"'，。！？、）】]+"
    r"|(?<![a-z0-9@.\-])(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?\.)+(?:"
    + "|".join(TLDS)
    + r")(?![a-z0-9])(?:/[^\s，。！？]*)?",
    re.IGNORECASE,
)
_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_ANY_DIGIT = re.compile(r"\d")
# Solicitations that are not words: a plus sign or heart for "add my WeChat", mini-program
# links, Taobao share codes.
_SOLICIT = re.compile(
    r"(?:\+|➕)\s*(?:v|我)|(?:v|威)\s*❤|#小程序://|￥[a-z0-9]{8,14}￥", re.IGNORECASE
)
# Saying one has messaged, or will message, someone privately is a reply, not an ad: "已私聊你",
# "私聊你了", "刚私聊过你了", "我私聊你吧". A solicitation asks the group to come to the poster
# ("私聊我", "有意私聊", "私聊领取", "私聊了解"); "私聊你们" addresses everyone and stays one.
# An ad phrase found inside such a reply does not count (matched on the compact text).
_REPLY = re.compile(r"(?:已|已经|刚|刚刚|才)私[聊信]|私[聊信](?:过(?!来)|了(?!解)|[你您妳](?!们))")
# Characters that stand for a dot in obfuscated domains ("www点abc点com", "fuli。top").
_DOTS = str.maketrans({"点": ".", "。": ".", "．": "."})
_URL_NOISE = re.compile(r"[\s\[\]【】()（）]+")
# What every pattern check needs to find anything: a dot between letters, "://", "www", or a
# WeChat/QQ marker. Messages without any of it skip the pattern checks.
_SUSPECT = re.compile(
    r"[a-z0-9]\s*[.点。．]\s*[a-z]|://|www|vx|wx|v信|微信|薇信|威信|徽信|卫星|绿泡泡|weixin|wechat"
    r"|\+|➕|❤|q\s*q|扣扣|企鹅|🐧|q群|加q|加扣|群号|加v|薇|#小程序|￥|h\s*t\s*t\s*p",
    re.IGNORECASE,
)
_PHONE_SEPARATORS = re.compile(r"(?<=\d)[\s\-._·/~•–—x×*]+(?=\d)")
_WECHAT_ID = re.compile(
    r"(?:vx|wx|v信|微信|薇信|威信|徽信|卫星|绿泡泡|weixin|wechat|加v|\+v|➕v|v\s*❤|薇)\s*(?:号|id)?\s*[:：=]?\s*"
    r"([a-z][-_a-z0-9]{5,19})(?![-_a-z0-9])",
    re.IGNORECASE,
)
_QQ = re.compile(
    r"(?:q\s*q|扣扣|企鹅|🐧|q群|加q|加扣|群号)\s*(?:号|群)?\s*[:：=]?\s*(\d{5,11})(?!\d)",
    re.IGNORECASE,
)


AD_CHECKS = frozenset(
    {"ad_phrase", "url", "wechat_id", "solicitation", "qq", "phone", "mini_program", "qr_code"}
)


@dataclass(frozen=True)
class Finding:
    check: str  # which check found it
    rule: Rule  # which rule it breaks
    evidence: str  # the original text that matched
    span: tuple[int, int] | None = None  # [start, end) in the original text
    detail: str = ""


@dataclass(frozen=True)
class Answer:
    check: str
    findings: tuple[Finding, ...] = ()

    @property
    def hit(self) -> bool:
        return bool(self.findings)


@dataclass(frozen=True)
class Message:
    """What detection needs of a message; the service builds it from the event."""

    text: str
    kind: str = "text"  # text | image | link | mini_program | file | red_packet
    urls: tuple[str, ...] = ()
    app_id: str = ""
    qr_codes: tuple[str, ...] = ()  # the payloads of the QR codes in a picture


def _domain(url: str) -> str:
    host = re.sub(r"^[a-z]+://", "", url.strip().lower())
    return re.split(r"[/:?#]", host, maxsplit=1)[0].removeprefix("www.")


class ContentChecks:
    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        lists = {
            "banned_keyword": ruleset.banned_keywords,
            "abuse": ruleset.abuse_lexicon,
            "ad_phrase": ruleset.ad_phrases if ruleset.ads else [],
        }
        # One automaton over every list, so a message is scanned once; "=word" is a whole message.
        self.words = Words(
            (w.removeprefix("="), w.startswith("="), (check, w.removeprefix("=")))
            for check, words in lists.items()
            for w in words
        )
        self.whitelist = tuple(d.lower().removeprefix("www.") for d in ruleset.url_whitelist)
        self.apps = frozenset(ruleset.mini_program_whitelist)
        names = ["banned_keyword", "abuse"]
        if ruleset.ads:
            names += ["ad_phrase", "url", "wechat_id", "solicitation", "qq", "mini_program"]
            names += ["qr_code"]
            names += ["phone"] if ruleset.detect_phone_numbers else []
        self.clean = [Answer(name) for name in names]

    def check(self, message: Message) -> list[Answer]:
        original = message.text
        light = normalize.light(original)
        compact = normalize.compact(light)
        hits = [(f.tag[0], f.start, f.end, f.tag[1]) for f in self.words.find(compact)]
        found = _outside_replies(hits, compact.text)
        plain = (
            not found
            and not message.urls
            and not message.qr_codes
            and message.kind != "mini_program"
        )
        # Most messages are clean: one look for anything a pattern check could match.
        if plain and not _SUSPECT.search(light.text) and not _digit_form(light).text:
            return list(self.clean)
        answers = [
            _words("banned_keyword", "keyword", found, compact, original),
            _words("abuse", "abuse", found, compact, original),
        ]
        if self.ruleset.ads:
            numbers = _digit_form(light)
            answers += [
                _words("ad_phrase", "ad", found, compact, original),
                self._urls(message, light, original),
                self._pattern("wechat_id", _WECHAT_ID, light, original),
                self._pattern("solicitation", _SOLICIT, light, original),
                self._pattern("qq", _QQ, numbers, original),
                self._mini_program(message),
                self._qr_codes(message),
            ]
            if self.ruleset.detect_phone_numbers:
                answers.append(self._pattern("phone", _PHONE, numbers, original))
        return answers

    @staticmethod
    def _pattern(name: str, pattern: re.Pattern[str], text: Normalized, original: str) -> Answer:
        findings = []
        for match in pattern.finditer(text.text):
            span = text.span(match.start(), match.end())
            findings.append(Finding(name, "ad", original[span[0] : span[1]], span))
        return Answer(name, tuple(findings))

    def _allowed(self, url: str) -> bool:
        domain = _domain(url)
        return any(domain == d or domain.endswith("." + d) for d in self.whitelist)

    def _urls(self, message: Message, light: Normalized, original: str) -> Answer:
        findings = []
        # As written, then with spaces and brackets gone and 点/。 read as dots ("www点a点com").
        dotted = _without(light, _URL_NOISE)
        dotted = Normalized(dotted.text.translate(_DOTS), base=None, origin=_origins(dotted))
        seen: set[str] = set()
        for form in (light, dotted):
            for match in _URL.finditer(form.text):
                domain = _domain(match.group())
                if domain in seen or self._allowed(match.group()):
                    continue
                seen.add(domain)
                span = form.span(match.start(), match.end())
                findings.append(Finding("url", "ad", original[span[0] : span[1]], span, domain))
        for url in message.urls:
            if not self._allowed(url) and _domain(url) not in seen:
                findings.append(Finding("url", "ad", url, None, _domain(url)))
        return Answer("url", tuple(findings))

    def _qr_codes(self, message: Message) -> Answer:
        """A QR code is an ad unless it is a link to a whitelisted domain: a WeChat card
        (u.wechat.com), a group (weixin.qq.com/g/), a payment code (wxp://) or a bare WeChat id
        is a way out of the group."""
        findings = []
        for code in message.qr_codes:
            link = _URL.fullmatch(code.strip()) is not None
            if not (link and self._allowed(code)):
                findings.append(Finding("qr_code", "ad", code, None, _domain(code) if link else ""))
        return Answer("qr_code", tuple(findings))

    def _mini_program(self, message: Message) -> Answer:
        if message.kind != "mini_program" or message.app_id in self.apps:
            return Answer("mini_program")
        return Answer(
            "mini_program", (Finding("mini_program", "ad", message.app_id or "mini program", None),)
        )


def _words(
    check: str, rule: Rule, found: list[tuple[str, int, int, str]], text: Normalized, original: str
) -> Answer:
    mine = sorted(((s, e, w) for c, s, e, w in found if c == check), key=lambda m: (m[0], -m[1]))
    findings: list[Finding] = []
    covered = -1
    for start, end, word in mine:
        if end <= covered:
            continue  # inside a longer match ("加微" in "加微信")
        covered = end
        span = text.span(start, end)
        findings.append(Finding(check, rule, original[span[0] : span[1]], span, word))
    return Answer(check, tuple(findings))


def _outside_replies(
    found: list[tuple[str, int, int, str]], text: str
) -> list[tuple[str, int, int, str]]:
    """The words found, less the ad phrases that lie inside a reply (`_REPLY`)."""
    if all(check != "ad_phrase" for check, *_ in found):
        return found
    replies = [m.span() for m in _REPLY.finditer(text)]
    return [
        (check, start, end, word)
        for check, start, end, word in found
        if check != "ad_phrase" or not any(a <= start and end <= b for a, b in replies)
    ]


def _digit_form(text: Normalized) -> Normalized:
    """Digit look-alikes as digits and the separators between digits dropped, so that
    "壹叁捌 0013-8000" reads as a number."""
    digits = normalize.digits(text.text)
    if not _ANY_DIGIT.search(digits) or len(_ANY_DIGIT.findall(digits)) < 5:
        return Normalized("")  # too few digits for a QQ or phone number
    return _without(Normalized(digits, _origins(text)), _PHONE_SEPARATORS)


def _origins(text: Normalized) -> tuple[int, ...] | None:
    if text.origin is None and text.base is None:
        return None
    return tuple(text.index(i) for i in range(len(text.text)))


def _without(text: Normalized, pattern: re.Pattern[str]) -> Normalized:
    """`text` with what `pattern` matches removed, still mapped to the original."""
    cuts = list(pattern.finditer(text.text))
    if not cuts:
        return text
    keep = [True] * len(text.text)
    for match in cuts:
        for i in range(match.start(), match.end()):
            keep[i] = False
    return Normalized(
        "".join(c for c, k in zip(text.text, keep, strict=True) if k),
        tuple(text.index(i) for i, k in enumerate(keep) if k),
    )
