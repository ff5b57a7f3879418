"""A lean HTTP/1.1 load generator for the bench: keep-alive connections on asyncio streams, each
sending its requests one after another. httpx spends about a millisecond of CPU a request
(200 concurrent clients in one process measured the client, at about 100 requests/s); this
spends a tenth of that, so that the figures are the server's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


async def _read(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return Answer(status, json.loads(body) if body else None)


async def post_many(
    url: str,
    requests: Iterator[tuple[dict[str, str], Any]],
    connections: int,
    answered: Callable[[Answer], None],
) -> None:
    """POST `(headers, body)` after `(headers, body)` to `url` over `connections` keep-alive
    connections until `requests` is used up, handing each answer to `answered`."""
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for headers, body in requests:
                payload = json.dumps(body).encode()
                extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                writer.write(
                    f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                    f"{extra}\r\n".encode()
                    + payload
                )
                answered(await _read(reader))
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
