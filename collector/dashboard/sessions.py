"""Dashboard sign-in sessions: a cookie an analyst gets for an API key.

The cookie holds one entry per site signed into, ``<key id>.<expiry>.<mac>``,
where the MAC is an HMAC-SHA256 of id and expiry keyed with the stored digest
of the key's secret. Nothing is stored server-side: a session is checked like
the key itself, on every request, so revoking the key ends its sessions at
once, and any collector sharing the store accepts it. Forging one needs the
digest, which only the store and the key's holder can compute.

This cookie is the only one the product ever sets, and only for analysts who
sign in — never for tracked visitors.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass

from collector.errors import Forbidden, Unauthorized
from collector.reports.auth import API_KEY, Grant, stored_key
from collector.storage import Store

COOKIE_NAME = "collector_session"
SESSION_SECONDS = 7 * 24 * 3600
MAX_SITES = 20  # entries kept in one cookie; the oldest go first


@dataclass(frozen=True)
class SessionEntry:
    key_id: str
    expires: int
    mac: str

    def encode(self) -> str:
        return f"{self.key_id}.{self.expires}.{self.mac}"


def sign_in(store: Store, grant: Grant, cookie: str | None,
            now: float | None = None) -> str:
    """The cookie value with an entry for ``grant`` (a checked token's) added.

    Share tokens do not sign in: they open ``/share/<token>`` and nothing else.
    """
    if grant.kind != API_KEY:
        raise Unauthorized("a share token opens its own link (/share/<token>); "
                           "sign in with an API key (ck_...)", "key")
    expires = int(now if now is not None else time.time()) + SESSION_SECONDS
    entry = SessionEntry(grant.key_id, expires, _mac(_digest_of(store, grant.key_id),
                                                     grant.key_id, expires))
    kept = [item for item in _entries(cookie) if item.key_id != grant.key_id]
    return _encode([*kept, entry][-MAX_SITES:])


def session_grants(store: Store, cookie: str | None, now: float | None = None) -> list[Grant]:
    """The grants of the cookie's valid entries (unexpired, key unrevoked), one per site."""
    grants: dict[str, Grant] = {}
    for grant in _valid_grants(store, cookie, now):
        grants[grant.site] = grant
    return list(grants.values())


def session_grant(store: Store, cookie: str | None, site: str) -> Grant:
    """The session's grant for ``site``: 401 without a valid session, 403 for another site."""
    signed_in = False
    # Entries are checked one by one (a store read each): stop at the site's.
    for grant in _valid_grants(store, cookie):
        if grant.site == site:
            return grant
        signed_in = True
    if signed_in:
        raise Forbidden("this session gives no access to that site; sign in with its key",
                        "site_id")
    raise Unauthorized("sign in at /login, or send Authorization: Bearer <key>",
                       "authorization")


def _valid_grants(store: Store, cookie: str | None,
                  now: float | None = None) -> Iterator[Grant]:
    """The grant of each cookie entry that is unexpired, of an unrevoked API key, and whose
    MAC is right, in the cookie's order."""
    moment = now if now is not None else time.time()
    for entry in _entries(cookie):
        if entry.expires < moment:
            continue
        found = stored_key(store, entry.key_id)
        if found is None or found[0].revoked or found[0].kind != API_KEY:
            continue
        # Constant-time: timing must not reveal how much of a MAC matched.
        if hmac.compare_digest(_mac(found[1], entry.key_id, entry.expires), entry.mac):
            yield Grant(found[0].key_id, found[0].site, found[0].kind)


def without_site(store: Store, cookie: str | None, site: str) -> str:
    """The cookie value with ``site``'s entries removed (signing out of one site)."""
    kept = [entry for entry in _entries(cookie)
            if (found := stored_key(store, entry.key_id)) is not None and found[0].site != site]
    return _encode(kept)


def _entries(cookie: str | None) -> list[SessionEntry]:
    entries = []
    for part in (cookie or "").split("~")[:MAX_SITES]:
        pieces = part.split(".")
        if len(pieces) == 3 and pieces[1].isdigit() and len(pieces[0]) <= 64:
            entries.append(SessionEntry(pieces[0], int(pieces[1]), pieces[2]))
    return entries


def _encode(entries: list[SessionEntry]) -> str:
    return "~".join(entry.encode() for entry in entries)


def _digest_of(store: Store, key_id: str) -> str:
    found = stored_key(store, key_id)
    if found is None:  # revoked and removed between the check and now
        raise Unauthorized("unknown or revoked key", "key")
    return found[1]


def _mac(digest: str, key_id: str, expires: int) -> str:
    return hmac.new(bytes.fromhex(digest), f"{key_id}.{expires}".encode(),
                    hashlib.sha256).hexdigest()
