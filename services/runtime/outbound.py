"""The one HTTP client for every request the project makes to a place a tenant can name: the
Telegram Bot API and the WeCom server API (a tenant sets `api_base_url`), and the pictures
posted in groups (anyone who can post sets their URL).

Such requests reach public addresses only (SSRF). The check is made where the connection is
made, not on the URL beforehand: the client's connections go through `_PublicOnly`, which
resolves the host itself, refuses it when any address it resolves to is loopback, private,
link-local, multicast, reserved or unspecified (so every spelling of loopback — `localhost`,
`127.1`, `2130706433`, `0x7f.0.0.1`, `[::ffff:127.0.0.1]` — is caught by what it resolves to),
and connects to the address it checked. A DNS answer that changes between check and connect
(rebinding) is never used, and a redirect's connection is checked like the first one.
Environment proxies are ignored, since a proxy would connect on its own.
`SHEQUN_OUTBOUND_ALLOW_PRIVATE_HOSTS` lifts the check for local stand-ins (development, tests)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_RESOLVE_SECONDS = 3.0


class NotPublic(Exception):
    """A request to a host that is not on the public internet, refused before connecting."""

    def __init__(self, host: str) -> None:
        # The address it resolved to is not said: the answer would map the private network.
        super().__init__(f"{host} is not a public address")
        self.host = host


def public_address(address: IPAddress) -> bool:
    """Whether an address is on the public internet. An IPv4-mapped IPv6 address is judged by
    its IPv4 address (::ffff:127.0.0.1 is loopback), a 6to4 one by both."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    inside = address.sixtofour if isinstance(address, ipaddress.IPv6Address) else None
    # fec0::/10 (site-local, deprecated) is still routed inside some networks.
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    return not site_local and all(
        a.is_global and not (a.is_multicast or a.is_reserved)
        for a in (address, inside)
        if a is not None
    )


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of a host, in the resolver's order (numeric spellings included)."""
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))


async def refused_host(host: str, allow_private: bool) -> str | None:
    """Why a host would be refused, for checking a URL when it is configured (a clearer error
    than a failed delivery later); None when it resolves to public addresses only, or cannot be
    resolved now (the connection is checked again anyway)."""
    if allow_private:
        return None
    try:
        async with asyncio.timeout(_RESOLVE_SECONDS):
            addresses = await resolve(host, 443)
    except (OSError, TimeoutError, UnicodeError, ValueError):
        return None
    return None if all(public_address(a) for a in addresses) else str(NotPublic(host))


class _PublicOnly(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to the addresses it resolved and checked."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        if not self.allow_private and not all(public_address(a) for a in addresses):
            raise NotPublic(host)
        error = httpcore.ConnectError(f"{host}: no address")
        for address in addresses:  # in the resolver's order, as a client would try them
            try:
                return await self._backend.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error


class _Transport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool on `_PublicOnly`. httpx takes no network
    backend, so the pool it made is replaced by one built the same way with the backend."""

    def __init__(self, allow_private: bool, connections: int) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=connections,
            keepalive_expiry=5.0,  # httpx's default
            network_backend=_PublicOnly(allow_private),
        )


def outbound_client(
    *,
    allow_private: bool,
    connections: int = 100,
    timeout: float = 10.0,
    follow_redirects: bool = False,
) -> httpx.AsyncClient:
    """An httpx client whose every connection, redirects included, goes to public addresses
    only (unless `allow_private`). A refused request raises `NotPublic`."""
    return httpx.AsyncClient(
        transport=_Transport(allow_private, connections),
        trust_env=False,
        follow_redirects=follow_redirects,
        max_redirects=3,
        timeout=timeout,
    )
