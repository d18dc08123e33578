"""The visitor hash: counts unique visitors without identifying them."""

from __future__ import annotations

from hashlib import blake2b

from collector.enrich.useragent import MAX_USER_AGENT_LENGTH


def visitor_hash(salt: bytes, site: str, ip: str, user_agent: str) -> int:
    """UInt64 keyed BLAKE2b of (site, IP, user agent) under the day's salt.

    Once the salt is destroyed (after 48 hours) the hash cannot be linked back to an
    IP by anyone, operator included: that is what makes the IP "irrevocably anonymized".
    Only the user agent's first MAX_USER_AGENT_LENGTH characters count, the part that is
    classified too: a padded header costs no more to hash.
    """
    message = f"{site}\x00{ip}\x00{user_agent[:MAX_USER_AGENT_LENGTH]}".encode()
    return int.from_bytes(blake2b(message, key=salt, digest_size=8).digest(), "little")
