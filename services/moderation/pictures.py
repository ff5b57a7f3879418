"""Pictures posted in groups, fetched for the QR-code check (二维码广告).

The moderation consumer hands over a batch's picture messages and gets back the QR codes of
each picture it could read. Downloads run concurrently (bounded), each within a time and a size
limit; `data:image/...;base64,` URLs (the sim platform's and the demo's) are read in place.
Decoding runs in worker threads, at most one per core: Pillow and zxing-cpp release the GIL, so
the event loop (APIs, Kafka heartbeats) is not held while a large photo is decoded. What was
read is kept in a bounded cache keyed by URL, because one picture is often posted in many
groups. A picture that cannot be fetched or read is no violation: it is counted
(`shequn_moderation_pictures_total`), logged with its host only (paths and queries of signed
URLs carry tokens) and left out of the answer.

Any API key can set a picture's URL, so downloads reach public addresses only (SSRF): they go
through the runtime's outbound client (`runtime/outbound.py`), which checks every address where
the connection is made, redirects included."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx
from cachetools import TTLCache

from services.gen.shequn.v1 import events_pb2
from services.moderation.detect.qr import read_qr_codes
from services.runtime import metrics
from services.runtime.logs import log_context
from services.runtime.outbound import NotPublic, outbound_client
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
_CACHE_ENTRIES = 10_000
# What a URL showed is trusted this long: the picture behind one may be swapped.
_CACHE_SECONDS = 600.0


class _Refused(Exception):
    """A picture that is not read, with its metric label and what went wrong."""

    def __init__(self, outcome: str, reason: str = "") -> None:
        super().__init__(outcome)
        self.outcome, self.reason = outcome, reason or outcome


class Pictures:
    def __init__(self, settings: Settings) -> None:
        self.timeout = settings.picture_fetch_timeout_seconds
        self.max_bytes = settings.picture_max_bytes
        self.budget = settings.picture_batch_budget_seconds
        self.http = outbound_client(
            allow_private=settings.outbound_allow_private_hosts,
            connections=settings.picture_fetch_concurrency,
            timeout=self.timeout,
            follow_redirects=True,
        )
        self._downloads = asyncio.Semaphore(settings.picture_fetch_concurrency)
        self._decoders = asyncio.Semaphore(os.cpu_count() or 1)
        self._read: TTLCache[bytes, tuple[str, ...]] = TTLCache(_CACHE_ENTRIES, _CACHE_SECONDS)

    async def close(self) -> None:
        await self.http.aclose()

    async def qr_codes(self, messages: Iterable[events_pb2.Event]) -> dict[str, tuple[str, ...]]:
        """By picture URL, the QR codes of each picture of these messages that could be read."""
        first: dict[str, events_pb2.Event] = {}
        for event in messages:
            first.setdefault(event.message_posted.message.media_url, event)
        if not first:
            return {}
        reads = {url: asyncio.create_task(self._qr_codes(url, e)) for url, e in first.items()}
        # Decoding costs up to a second of CPU per large picture: a batch full of them must not
        # hold back every group of the partition.
        done, late = await asyncio.wait(reads.values(), timeout=self.budget)
        for task in late:
            task.cancel()
        if late:
            metrics.PICTURES.labels("over_budget").inc(len(late))
            log.warning("%d pictures not read within the batch's budget", len(late))
        return {
            url: codes
            for url, task in reads.items()
            if task in done and (codes := task.result()) is not None
        }

    async def _qr_codes(self, url: str, event: events_pb2.Event) -> tuple[str, ...] | None:
        key = hashlib.sha256(url.encode()).digest()  # a data: URL is the whole picture
        if (cached := self._read.get(key)) is not None:
            metrics.PICTURES.labels("cached").inc()
            return cached
        try:
            async with self._downloads:
                picture = await self._download(url)
            async with self._decoders:
                scan = await asyncio.to_thread(read_qr_codes, picture, self.max_bytes)
            if scan.refused:
                raise _Refused(scan.refused)
        except _Refused as refused:
            metrics.PICTURES.labels(refused.outcome).inc()
            with log_context(tenant_id=event.tenant_id, event_id=event.event_id):
                log.log(
                    logging.DEBUG if refused.outcome == "unsupported" else logging.WARNING,
                    "picture not read: %s",
                    refused.reason,
                    extra={"fields": {"outcome": refused.outcome, "host": _host(url)}},
                )
            return None
        metrics.PICTURES.labels("read").inc()
        self._read[key] = scan.codes
        return scan.codes

    async def _download(self, url: str) -> bytes:
        if url.startswith("data:"):
            return self._inline(url)
        try:
            if urlsplit(url).scheme not in ("http", "https"):
                # e.g. a Telegram file_id: only ingestion holds the bot token to fetch it
                raise _Refused("unsupported")
            async with asyncio.timeout(self.timeout), self.http.stream("GET", url) as response:
                if response.status_code != httpx.codes.OK:
                    raise _Refused("failed", f"HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise _Refused("too_large")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise _Refused("too_large")
                return bytes(body)
        except NotPublic as exc:
            raise _Refused("refused", str(exc)) from None
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, ValueError) as exc:
            raise _Refused("failed", type(exc).__name__) from None

    def _inline(self, url: str) -> bytes:
        header, _, data = url.removeprefix("data:").partition(",")
        if not header.startswith("image/") or not header.endswith(";base64"):
            raise _Refused("unsupported")
        if len(data) * 3 // 4 > self.max_bytes:
            raise _Refused("too_large")
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error:
            raise _Refused("unreadable", "invalid base64") from None


def _host(url: str) -> str:
    if url.startswith("data:"):
        return "data:"
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""
