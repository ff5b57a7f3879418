"""The picture fetcher at moderation's edge, against a local HTTP server: downloads, data: URLs,
the cache, and every way a picture is not read — none of which raises."""

from __future__ import annotations

import os

from prometheus_client import REGISTRY

from services.devstack import free_port
from services.gen.shequn.v1 import events_pb2
from services.moderation.pictures import Pictures
from services.runtime.settings import Settings
from tests.fakes import FakePictureHost, serve_fake
from tests.moderation.pictures import WECHAT_CARD, data_url, photo, qr_png

OUTCOMES = ("read", "cached", "failed", "too_large", "unreadable", "unsupported")


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
        settings = Settings(picture_max_bytes=20_000, picture_fetch_timeout_seconds=0.2)
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
    }
