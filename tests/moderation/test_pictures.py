"""The picture fetcher at moderation's edge, against a local HTTP server: downloads, data: URLs,
the cache, and every way a picture is not read — none of which raises."""

from __future__ import annotations

import ipaddress
import os
import time

import pytest
from prometheus_client import REGISTRY

from services.devtools.stack import free_port
from services.gen.shequn.v1 import events_pb2
from services.moderation.pictures import Pictures
from services.runtime import outbound
from services.runtime.settings import Settings
from tests.fakes import FakePictureHost, serve_fake
from tests.moderation.pictures import WECHAT_CARD, data_url, photo, qr_png

OUTCOMES = (
    "read", "cached", "failed", "too_large", "unreadable", "unsupported", "refused", "over_budget"
)  # fmt: skip


def _posted(url: str) -> events_pb2.Event:
    message = events_pb2.ChatMessage(kind=events_pb2.MESSAGE_KIND_IMAGE, media_url=url)
    return events_pb2.Event(
        event_id=f"ev-{url[-12:]}",
        tenant_id="t-1",
        group_id="g-1",
        message_posted=events_pb2.MessagePosted(message=message),
    )


def _counts() -> dict[str, float]:
    return {
        o: REGISTRY.get_sample_value("shequn_moderation_pictures_total", {"outcome": o}) or 0.0
        for o in OUTCOMES
    }


async def test_pictures_are_read_once_and_what_cannot_be_read_is_only_counted() -> None:
    big = os.urandom(30_000)
    host = FakePictureHost(
        pictures={
            "card.png": qr_png(WECHAT_CARD),
            "plain.png": photo(),
            "big.png": big,
            "chunked-big.png": big,
            "text.png": b"hello, not a picture",
            "slow.png": qr_png(WECHAT_CARD),
        }
    )
    async with serve_fake(host):
        settings = Settings(
            picture_max_bytes=20_000,
            picture_fetch_timeout_seconds=0.2,
            outbound_allow_private_hosts=True,  # the test server is on 127.0.0.1
        )
        pictures = Pictures(settings)
        inline = data_url(qr_png(WECHAT_CARD))
        read = [f"{host.url}/card.png", f"{host.url}/plain.png", inline]
        not_read = [
            f"{host.url}/missing.png",  # 404
            f"http://127.0.0.1:{free_port()}/gone.png",  # nothing listens
            f"{host.url}/slow.png",  # past the timeout
            f"{host.url}/big.png",  # Content-Length over the limit
            f"{host.url}/chunked-big.png",  # streamed over the limit
            data_url(big),
            f"{host.url}/text.png",
            "data:image/png;base64,@@@",
            "AgACAgIAAxkBAAIBQ2V",  # a Telegram file_id
            "ftp://files.example.com/a.png",
        ]
        before = _counts()
        try:
            found = await pictures.qr_codes(_posted(u) for u in read + not_read)
            assert found == {read[0]: (WECHAT_CARD,), read[1]: (), inline: (WECHAT_CARD,)}
            again = await pictures.qr_codes([_posted(read[0]), _posted(inline)])
            assert again == {read[0]: (WECHAT_CARD,), inline: (WECHAT_CARD,)}
        finally:
            await pictures.close()
    assert host.requests.count("card.png") == 1, "the second time comes from the cache"
    after = _counts()
    assert {o: after[o] - before[o] for o in OUTCOMES} == {
        "read": 3,
        "cached": 2,
        "failed": 3,
        "too_large": 3,
        "unreadable": 2,
        "unsupported": 2,
        "refused": 0,
        "over_budget": 0,
    }


async def test_pictures_on_non_public_addresses_are_refused_without_connecting() -> None:
    host = FakePictureHost(pictures={"card.png": qr_png(WECHAT_CARD)})
    async with serve_fake(host):
        port = host.url.rsplit(":", 1)[1]
        pictures = Pictures(Settings(picture_fetch_timeout_seconds=5))
        inline = data_url(qr_png(WECHAT_CARD))
        refused = [
            f"{host.url}/card.png",  # 127.0.0.1, where a server listens
            f"http://localhost:{port}/card.png",  # a name that resolves to loopback
            f"http://2130706433:{port}/card.png",  # 127.0.0.1 as one number
            f"http://[::1]:{port}/card.png",
            f"http://[::ffff:127.0.0.1]:{port}/card.png",  # IPv4-mapped IPv6
            f"http://0.0.0.0:{port}/card.png",
            "http://10.20.30.40/card.png",
            "http://192.168.1.1/card.png",
            "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
            "https://[fd00::1]/card.png",
            "http://224.0.0.1/card.png",
        ]
        before = _counts()
        started = time.monotonic()
        try:
            found = await pictures.qr_codes(_posted(u) for u in [inline, *refused])
        finally:
            await pictures.close()
    assert time.monotonic() - started < 2, "no connection was tried (none would time out)"
    assert found == {inline: (WECHAT_CARD,)}, "data: URLs are still read"
    assert host.requests == []
    after = _counts()
    changed = {o: after[o] - before[o] for o in OUTCOMES if after[o] != before[o]}
    assert changed == {"read": 1, "refused": len(refused)}


async def test_a_redirect_is_checked_like_the_first_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The test server is on loopback: let loopback count as public, nothing else that is not.
    def loopback_or_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return address.is_loopback or address.is_global

    monkeypatch.setattr(outbound, "public_address", loopback_or_public)
    host = FakePictureHost(pictures={"card.png": qr_png(WECHAT_CARD)})
    async with serve_fake(host):
        host.redirects = {
            "moved.png": f"{host.url}/card.png",
            "metadata.png": "http://169.254.169.254/latest/meta-data/",
            "inside.png": "http://10.20.30.40/card.png",
        }
        pictures = Pictures(Settings(picture_fetch_timeout_seconds=5))
        urls = [f"{host.url}/{name}" for name in host.redirects]
        before = _counts()
        try:
            found = await pictures.qr_codes(_posted(u) for u in urls)
        finally:
            await pictures.close()
    assert found == {urls[0]: (WECHAT_CARD,)}
    after = _counts()
    assert (after["read"] - before["read"], after["refused"] - before["refused"]) == (1, 2)


async def test_a_batch_waits_for_its_pictures_no_longer_than_its_budget() -> None:
    host = FakePictureHost(pictures={"slow.png": qr_png(WECHAT_CARD)})
    async with serve_fake(host):
        settings = Settings(
            picture_batch_budget_seconds=0.2,
            picture_fetch_timeout_seconds=5,
            outbound_allow_private_hosts=True,  # the test server is on 127.0.0.1
        )
        pictures = Pictures(settings)
        inline = data_url(qr_png(WECHAT_CARD))
        before = _counts()
        started = time.monotonic()
        try:
            found = await pictures.qr_codes([_posted(f"{host.url}/slow.png"), _posted(inline)])
        finally:
            await pictures.close()
        assert time.monotonic() - started < 0.45, "the slow picture takes 0.5 s"
        assert found == {inline: (WECHAT_CARD,)}
        after = _counts()
        assert after["over_budget"] - before["over_budget"] == 1
