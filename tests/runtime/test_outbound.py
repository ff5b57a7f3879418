"""The outbound client: requests to places a tenant names reach public addresses only, checked
where the connection is made. Against a real local HTTP server, which must see no request."""

from __future__ import annotations

import ipaddress

import pytest

from services.runtime.outbound import NotPublic, outbound_client, public_address, refused_host
from tests.fakes import FakePictureHost, serve_fake


def test_public_addresses() -> None:
    public = ("8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8")
    private = (
        "127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "255.255.255.255", "240.0.0.1", "::1", "::", "fe80::1",
        "fd00::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "2002:7f00:1::",
        "64:ff9b::7f00:1", "fec0::1",
    )  # fmt: skip
    assert [a for a in public if not public_address(ipaddress.ip_address(a))] == []
    assert [a for a in private if public_address(ipaddress.ip_address(a))] == []


# Every spelling of loopback an admin might type into api_base_url, and private ranges.
LOOPBACK = ["127.0.0.1", "localhost", "127.1", "2130706433", "0x7f.0.0.1", "[::ffff:127.0.0.1]",
            "[::1]", "0.0.0.0"]  # fmt: skip
PRIVATE = ["10.20.30.40", "192.168.1.1", "172.16.5.4", "169.254.169.254", "[fd00::1]"]


async def test_every_spelling_of_a_private_address_is_refused_without_connecting() -> None:
    server = FakePictureHost(pictures={"x": b"secret"})
    async with serve_fake(server):
        port = server.url.rsplit(":", 1)[1]
        async with outbound_client(allow_private=False, timeout=2.0) as http:
            for host in LOOPBACK + PRIVATE:
                with pytest.raises(NotPublic) as refused:
                    await http.get(f"http://{host}:{port}/x")
                assert "is not a public address" in str(refused.value)
        assert server.requests == []
        # Lifted for local stand-ins: the same server is reached.
        async with outbound_client(allow_private=True) as http:
            assert (await http.get(f"http://127.1:{port}/x")).content == b"secret"
        assert server.requests == ["x"]


async def test_a_redirect_to_a_private_address_is_refused() -> None:
    server = FakePictureHost(redirects={"go": "http://169.254.169.254/latest/meta-data/"})
    async with serve_fake(server), outbound_client(allow_private=False) as http:
        # The first hop is refused too (it is loopback); the redirect's own check is the
        # pictures test's (with loopback made to count as public).
        with pytest.raises(NotPublic):
            await http.get(f"{server.url}/go", follow_redirects=True)


@pytest.mark.parametrize("host", ["localhost", "127.1", "0x7f.0.0.1", "::ffff:127.0.0.1"])
async def test_a_configured_host_is_checked_when_it_is_set(host: str) -> None:
    assert await refused_host(host, allow_private=False) == f"{host} is not a public address"
    assert await refused_host(host, allow_private=True) is None
    # A name that cannot be resolved now is left to the check at connection time.
    assert await refused_host("no-such-host.invalid", allow_private=False) is None
