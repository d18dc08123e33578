"""Which address sent the request: the socket peer, or what a trusted proxy says.

Forwarding headers are believed only when the peer is one of
``COLLECTOR_TRUSTED_PROXIES``; the chain is walked from the right past trusted
hops, so a client cannot spoof its address by sending the headers itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from socket import AF_INET, AF_INET6, inet_pton

from collector.settings import IPNetwork


class ClientAddressResolver:
    def __init__(self, trusted_proxies: Sequence[IPNetwork]) -> None:
        self._trusted = tuple(trusted_proxies)
        # (network, mask) as integers per address family, for a check without objects.
        self._ranges: dict[int, list[tuple[int, int]]] = {AF_INET: [], AF_INET6: []}
        for network in self._trusted:
            family = AF_INET if network.version == 4 else AF_INET6
            self._ranges[family].append((int(network.network_address), int(network.netmask)))
        # Requests with forwarding headers from a peer that is not a trusted proxy: behind
        # an unlisted proxy every visitor would get its address (`collector check` warns).
        self.untrusted_forwarding = 0

    def resolve(self, peer: str | None, headers: Mapping[str, str]) -> str:
        """The client address as text ("" when unknown). Lives only for this request."""
        peer = peer or ""
        if not self._trusted or not self._is_trusted(peer):
            if "x-forwarded-for" in headers or "forwarded" in headers or "x-real-ip" in headers:
                self.untrusted_forwarding += 1
            return peer
        for hop in reversed(self._forwarded_chain(headers)):
            if not self._is_trusted(hop):
                return hop
        return peer

    def trusts(self, peer: str | None) -> bool:
        """Whether ``peer`` is a trusted proxy, whose forwarding headers count."""
        return bool(peer) and self._is_trusted(peer or "")

    def _is_trusted(self, address: str) -> bool:
        # No cache here on purpose: an address lives only for the request that carried it.
        family = AF_INET6 if ":" in address else AF_INET
        try:
            value = int.from_bytes(inet_pton(family, address), "big")
        except OSError:
            return False
        return any(value & mask == network for network, mask in self._ranges[family])

    def _forwarded_chain(self, headers: Mapping[str, str]) -> list[str]:
        forwarded_for = headers.get("x-forwarded-for")
        if forwarded_for:
            return [_strip_port(part) for part in forwarded_for.split(",") if part.strip()]
        forwarded = headers.get("forwarded")
        if forwarded:
            return _parse_forwarded(forwarded)
        real_ip = headers.get("x-real-ip")
        return [_strip_port(real_ip)] if real_ip else []


def _parse_forwarded(value: str) -> list[str]:
    """The ``for=`` addresses of an RFC 7239 ``Forwarded`` header, in order."""
    hops = []
    for element in value.split(","):
        for pair in element.split(";"):
            key, _, found = pair.strip().partition("=")
            if key.lower() == "for" and found:
                hops.append(_strip_port(found.strip('"')))
    return hops


def _strip_port(value: str) -> str:
    """'1.2.3.4:5678' → '1.2.3.4'; '[2001:db8::1]:443' → '2001:db8::1'; bare IPv6 unchanged."""
    value = value.strip()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value
