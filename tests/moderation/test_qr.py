"""QR codes in pictures, without I/O: reading them from bytes, and which of them are ads."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from services.moderation.detect.behaviour import probation
from services.moderation.detect.content import ContentChecks, Finding, Message
from services.moderation.detect.qr import read_qr_codes
from services.moderation.detect.ruleset import Ruleset
from services.moderation.detect.verdict import Verdict
from tests.moderation.pictures import WECHAT_CARD, photo, qr_png

CHECKS = ContentChecks(Ruleset(url_whitelist=["example.com"]))
MAX_BYTES = 5 * 1024 * 1024
T0 = datetime(2026, 11, 22, 8, tzinfo=UTC)


def _qr_findings(*codes: str, checks: ContentChecks = CHECKS) -> list[Finding]:
    answers = checks.check(Message("", kind="image", qr_codes=codes))
    return [f for a in answers if a.check == "qr_code" for f in a.findings]


def test_a_wechat_card_is_an_ad_with_its_payload_as_evidence() -> None:
    scan = read_qr_codes(qr_png(WECHAT_CARD), MAX_BYTES)
    assert scan.codes == (WECHAT_CARD,) and not scan.refused
    verdict = Verdict(tuple(CHECKS.check(Message("", kind="image", qr_codes=scan.codes))))
    assert verdict.violation == Finding("qr_code", "ad", WECHAT_CARD, None, "u.wechat.com")


@pytest.mark.parametrize(
    "payload",
    [
        "https://weixin.qq.com/g/AQYAAJ8xTNmq0rX4",  # a WeChat group
        "https://work.weixin.qq.com/ca/cawcde9a2c1b",  # a WeCom contact
        "wxp://f2f0Qz8dGvA3m7k",  # a payment code
        "wxid_k2m9shop8888",  # a bare WeChat id
        "加我微信 shop8888",
        "https://example.com.deals.top/x",  # the whitelisted name inside another domain
    ],
)
def test_qr_codes_that_lead_out_of_the_group_are_ads(payload: str) -> None:
    [finding] = _qr_findings(payload)
    assert (finding.rule, finding.evidence) == ("ad", payload)


@pytest.mark.parametrize(
    "payload", ["https://shop.example.com/item/1", "http://example.com", "www.example.com/a"]
)
def test_a_qr_code_of_a_whitelisted_domain_is_no_ad(payload: str) -> None:
    assert _qr_findings(payload) == []


def test_a_picture_is_an_ad_unless_every_code_in_it_is_whitelisted() -> None:
    allowed = "https://shop.example.com/item/1"
    scan = read_qr_codes(photo(allowed, WECHAT_CARD), MAX_BYTES)
    assert set(scan.codes) == {allowed, WECHAT_CARD}
    assert [f.evidence for f in _qr_findings(*scan.codes)] == [WECHAT_CARD]
    assert _qr_findings(*read_qr_codes(photo(allowed), MAX_BYTES).codes) == []


def test_a_jpeg_photo_with_a_qr_code_is_read() -> None:
    scan = read_qr_codes(photo(WECHAT_CARD, size=(1600, 1200), kind="JPEG"), MAX_BYTES)
    assert scan.codes == (WECHAT_CARD,)


def test_a_picture_without_a_qr_code_has_none() -> None:
    assert read_qr_codes(photo(), MAX_BYTES).codes == ()
    assert _qr_findings() == []


def test_corrupt_and_oversized_pictures_are_refused_without_an_exception() -> None:
    png = qr_png(WECHAT_CARD)
    assert read_qr_codes(b"not a picture", MAX_BYTES).refused == "unreadable"
    assert read_qr_codes(png[: len(png) // 2], MAX_BYTES).refused == "unreadable"
    assert read_qr_codes(png, max_bytes=len(png) - 1).refused == "too_large"
    # A decompression bomb: a few kilobytes that claim 64 million pixels.
    bomb = io.BytesIO()
    Image.new("1", (8000, 8000), 1).save(bomb, "PNG")
    assert len(bomb.getvalue()) < 50_000
    assert read_qr_codes(bomb.getvalue(), MAX_BYTES).refused == "too_large"


def test_a_qr_code_from_a_newcomer_breaks_probation_too() -> None:
    answers = CHECKS.check(Message("", kind="image", qr_codes=(WECHAT_CARD,)))
    assert probation(T0, T0 + timedelta(minutes=3), 10, answers).hit
    whitelisted = CHECKS.check(Message("", kind="image", qr_codes=("https://example.com/a",)))
    assert not probation(T0, T0 + timedelta(minutes=3), 10, whitelisted).hit


def test_qr_codes_are_not_checked_when_ads_are_off() -> None:
    assert _qr_findings(WECHAT_CARD, checks=ContentChecks(Ruleset(ads=False))) == []
