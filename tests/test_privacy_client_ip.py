"""Client address resolution: forwarding headers only from trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest

from collector.privacy import ClientAddressResolver

PROXY = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    resolver = ClientAddressResolver([])
    assert resolver.resolve("198.51.100.7", {"x-forwarded-for": "1.2.3.4"}) == "198.51.100.7"


def test_spoofed_headers_from_an_untrusted_peer_change_nothing() -> None:
    resolver = ClientAddressResolver(PROXY)
    headers = {"x-forwarded-for": "1.2.3.4", "forwarded": "for=5.6.7.8", "x-real-ip": "9.9.9.9"}
    assert resolver.resolve("198.51.100.7", headers) == "198.51.100.7"


@pytest.mark.parametrize(("headers", "expected"), [
    ({"x-forwarded-for": "203.0.113.5"}, "203.0.113.5"),
    ({"x-forwarded-for": "6.6.6.6, 203.0.113.5, 10.1.1.1"}, "203.0.113.5"),
    ({"x-forwarded-for": "203.0.113.5:4711"}, "203.0.113.5"),
    ({"forwarded": 'for="[2001:db8::7]:443";proto=https'}, "2001:db8::7"),
    ({"forwarded": "for=6.6.6.6, for=203.0.113.5"}, "203.0.113.5"),
    ({"x-real-ip": "2001:db8::9"}, "2001:db8::9"),
    ({}, "10.0.0.2"),
    ({"x-forwarded-for": "10.0.0.3, 10.0.0.4"}, "10.0.0.2"),
])
def test_a_trusted_proxy_is_believed_walking_from_the_right(headers: dict[str, str],
                                                             expected: str) -> None:
    assert ClientAddressResolver(PROXY).resolve("10.0.0.2", headers) == expected


def test_ipv6_trusted_proxy() -> None:
    resolver = ClientAddressResolver(PROXY)
    assert resolver.resolve("fd00::1", {"x-forwarded-for": "2001:db8::5"}) == "2001:db8::5"
