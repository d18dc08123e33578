"""Operations on a site's k-thresholds: ``thresholds.show | set``."""

from __future__ import annotations

from typing import Any

from collector.operations import OperationContext, operation
from collector.operations.sites import refresh_server
from collector.reports.thresholds import Thresholds, set_thresholds, thresholds
from collector.sites import check_allowed, domain_of


def _thresholds_json(site: str, current: Thresholds) -> dict[str, Any]:
    return {"site": site, "k": current.k, "public_k": current.public_k}


@operation("thresholds.show")
def show(context: OperationContext, site: str) -> dict[str, Any]:
    domain = domain_of(site, "site")
    return _thresholds_json(domain, thresholds(context.store, domain))


@operation("thresholds.set")
def set_values(context: OperationContext, site: str, k: int | None = None,
               public_k: int | None = None) -> dict[str, Any]:
    """Set k for API-key holders and/or for share tokens (None: keep the current value)."""
    domain = check_allowed(context.store, site, context.settings.sites)
    current = thresholds(context.store, domain)
    updated = set_thresholds(context.store, domain, current.k if k is None else k,
                             current.public_k if public_k is None else public_k)
    refresh_server(context)
    return _thresholds_json(domain, updated)
