"""API keys and public share tokens for the reports API.

A token is ``ck_<id>_<secret>`` (API key) or ``cs_<id>_<secret>`` (share
token). Only the SHA-256 of the secret is stored and the token is shown once;
checking compares digests in constant time. Keys are scoped to one site and
revocable; share tokens are read-only like everything in the reports API, and
see breakdowns with the stricter public k-threshold.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from collector.errors import Forbidden, InvalidField, NotFound, Unauthorized
from collector.storage import Store

API_KEY = "api"
SHARE = "share"
_PREFIXES = {API_KEY: "ck", SHARE: "cs"}


@dataclass(frozen=True)
class Grant:
    """What a checked token allows: reading one site's reports."""

    key_id: str
    site: str
    kind: str


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    site: str
    kind: str
    label: str
    created_ms: int
    revoked: bool
    # Origins that may frame a share link's dashboard (frame-ancestors); share tokens only.
    embed_origins: tuple[str, ...] = ()


def create_key(store: Store, site: str, kind: str = API_KEY, label: str = "",
               embed_origins: tuple[str, ...] = ()) -> str:
    """Store a new key's hash and return the token, which is never stored nor shown again."""
    if kind not in _PREFIXES:
        raise InvalidField("must be api or share", "kind")
    if embed_origins and kind != SHARE:
        raise InvalidField("only share links can be embedded in other sites", "embed_origin")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    _save(store, KeyInfo(key_id, site, kind, label, int(time.time() * 1000), False,
                         embed_origins), _digest(secret))
    return f"{_PREFIXES[kind]}_{key_id}_{secret}"


def list_keys(store: Store, site: str | None = None) -> list[KeyInfo]:
    rows = store.rows(
        "SELECT key_id, site, kind, label, created_ms, revoked, embed_origins FROM api_keys "
        "FINAL WHERE {site:String} = '' OR site = {site:String} ORDER BY site, created_ms",
        {"site": site or ""})
    return [KeyInfo(key_id, key_site, kind, label, created, bool(revoked), tuple(origins))
            for key_id, key_site, kind, label, created, revoked, origins in rows]


def find_key(store: Store, key_id: str) -> KeyInfo | None:
    found = _stored(store, key_id)
    return found[0] if found else None


def key_id_of(token: str) -> str:
    """The public id inside a token (``ck_<id>_<secret>``), by which it is listed and revoked."""
    return token.split("_", 2)[1]


def revoke_key(store: Store, key_id: str) -> KeyInfo:
    """Revoke the key and return it; NotFound for no such key, InvalidField when it was
    already revoked (saying "revoked" again would hide a mistyped id)."""
    found = _stored(store, key_id)
    if found is None:
        raise NotFound(f"no key {key_id!r}", "key_id")
    info, digest = found
    if info.revoked:
        raise InvalidField(f"key {key_id} was already revoked", "key_id")
    revoked = dataclasses.replace(info, revoked=True)
    _save(store, revoked, digest)
    return revoked


def check_token(store: Store, token: str | None) -> Grant:
    """The grant of a valid, unrevoked token; Unauthorized otherwise."""
    if not token:
        raise Unauthorized("an API key is required: Authorization: Bearer <key>", "authorization")
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] not in _PREFIXES.values():
        raise Unauthorized("not an API key or share token", "authorization")
    found = _stored(store, parts[1])
    # Constant-time comparison: response timing must not reveal how much of a secret matched.
    if found is None or found[0].revoked or not hmac.compare_digest(found[1], _digest(parts[2])):
        raise Unauthorized("unknown or revoked key", "authorization")
    info = found[0]
    if _PREFIXES[info.kind] != parts[0]:
        raise Unauthorized("unknown or revoked key", "authorization")
    return Grant(info.key_id, info.site, info.kind)


def stored_key(store: Store, key_id: str) -> tuple[KeyInfo, str] | None:
    """The key and the SHA-256 of its secret, for checks made elsewhere (dashboard sessions)."""
    return _stored(store, key_id)


def require_site(grant: Grant, site: str) -> None:
    if grant.site != site:
        raise Forbidden("this key does not give access to that site", "site_id")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _stored(store: Store, key_id: str) -> tuple[KeyInfo, str] | None:
    rows = store.rows(
        "SELECT key_id, site, kind, label, created_ms, revoked, embed_origins, secret_sha256 "
        "FROM api_keys FINAL WHERE key_id = {key_id:String}", {"key_id": key_id})
    if not rows:
        return None
    key_id, site, kind, label, created, revoked, origins, digest = rows[0]
    return KeyInfo(key_id, site, kind, label, created, bool(revoked), tuple(origins)), digest


def _save(store: Store, info: KeyInfo, digest: str) -> None:
    store.command(
        "INSERT INTO api_keys (key_id, site, kind, secret_sha256, label, created_ms, revoked, "
        "embed_origins, version) VALUES ({key_id:String}, {site:String}, {kind:String}, "
        "{digest:String}, {label:String}, {created:UInt64}, {revoked:UInt8}, "
        "{origins:Array(String)}, {version:UInt64})",
        {"key_id": info.key_id, "site": info.site, "kind": info.kind, "digest": digest,
         "label": info.label, "created": info.created_ms, "revoked": int(info.revoked),
         "origins": list(info.embed_origins), "version": time.time_ns()})
