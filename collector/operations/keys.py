"""Operations on report API keys and share tokens: ``keys.create | list | revoke``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from collector.dashboard.security import normalize_origin
from collector.operations import OperationContext, operation
from collector.reports.auth import (
    API_KEY,
    SHARE,
    KeyInfo,
    create_key,
    find_key,
    key_id_of,
    list_keys,
    revoke_key,
)
from collector.sites import check_allowed, domain_of


def key_json(info: KeyInfo) -> dict[str, Any]:
    """A key as listed: never its secret, which is not stored."""
    created = datetime.fromtimestamp(info.created_ms / 1000, UTC)
    return {"key_id": info.key_id, "site": info.site, "kind": info.kind, "label": info.label,
            "created": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "revoked": info.revoked, "embed_origins": list(info.embed_origins)}


@operation("keys.create")
def create(context: OperationContext, site: str, share: bool = False,
           label: str = "", embed_origins: list[str] | None = None) -> dict[str, Any]:
    """A new key for ``site``, which must be allowed when an allow-list exists; the token
    is in the result once and never again. A share token's dashboard may be framed by
    ``embed_origins`` (none by default)."""
    domain = check_allowed(context.store, site, context.settings.sites)
    origins = tuple(dict.fromkeys(normalize_origin(origin) for origin in embed_origins or ()))
    token = create_key(context.store, domain, SHARE if share else API_KEY, label, origins)
    info = find_key(context.store, key_id_of(token))
    assert info is not None  # just written
    return {"key": token, **key_json(info)}


@operation("keys.list")
def list_all(context: OperationContext, site: str | None = None) -> dict[str, Any]:
    domain = domain_of(site, "site") if site else None
    return {"keys": [key_json(info) for info in list_keys(context.store, domain)]}


@operation("keys.revoke")
def revoke(context: OperationContext, key_id: str) -> dict[str, Any]:
    # Keys are checked on every request, so the running server needs no refresh.
    return key_json(revoke_key(context.store, key_id.strip()))
