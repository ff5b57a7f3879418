"""Who sent a request, behind an ingress whose pods' addresses are only known as a network."""

from __future__ import annotations

from starlette.requests import Request

from services.runtime.http import client_address


def _request(peer: str, forwarded: str = "") -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": (peer, 40000), "headers": headers})


def test_an_ingress_pod_in_a_trusted_network_passes_on_the_client() -> None:
    pods = ["10.0.0.0/8", "::1"]
    assert client_address(_request("10.42.3.17", "203.0.113.9"), pods) == "203.0.113.9"
    # What a client wrote before the ingress's own entry is not believed.
    assert client_address(_request("10.42.3.17", "1.2.3.4, 203.0.113.9"), pods) == "203.0.113.9"
    # A chain of trusted proxies is walked back to the first address outside them.
    assert client_address(_request("10.42.3.17", "203.0.113.9, 10.1.1.1"), pods) == "203.0.113.9"


def test_anyone_else_is_who_connected() -> None:
    assert client_address(_request("198.51.100.7", "203.0.113.9"), ["10.0.0.0/8"]) == "198.51.100.7"
    assert client_address(_request("10.42.3.17", "203.0.113.9"), ["127.0.0.1"]) == "10.42.3.17"
