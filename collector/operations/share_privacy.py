"""Operations on a site's privacy budget for share links: ``privacy.show | set``.

Each new answer a share token gets spends the site's ``epsilon``; one token spends at
most ``epsilon_day`` per UTC day (``collector.reports.budget``, docs/privacy.md).
"""

from __future__ import annotations

from typing import Any

from collector.operations import OperationContext, operation
from collector.operations.sites import refresh_server
from collector.reports.auth import SHARE, list_keys
from collector.reports.budget import PrivacyBudget
from collector.reports.thresholds import set_share_budget, thresholds
from collector.sites import check_allowed, domain_of
from collector.storage import Store


def share_privacy_json(store: Store, site: str) -> dict[str, Any]:
    """The site's share-link settings and what each of its share links spent today."""
    current = thresholds(store, site)
    budget = PrivacyBudget(store)
    links = [{"key_id": key.key_id, "spent_today": round(budget.spent_today(key.key_id), 6)}
             for key in list_keys(store, site) if key.kind == SHARE and not key.revoked]
    return {"site": site, "public_k": current.public_k, "epsilon": current.epsilon,
            "epsilon_day": current.epsilon_day, "share_links": links}


@operation("privacy.show")
def show(context: OperationContext, site: str) -> dict[str, Any]:
    return share_privacy_json(context.store, domain_of(site, "site"))


@operation("privacy.set")
def set_values(context: OperationContext, site: str, epsilon: float | None = None,
               epsilon_day: float | None = None) -> dict[str, Any]:
    """Set what each answer spends and/or what a share link may spend per day (None: keep)."""
    domain = check_allowed(context.store, site, context.settings.sites)
    current = thresholds(context.store, domain)
    set_share_budget(context.store, domain, current.epsilon if epsilon is None else epsilon,
                     current.epsilon_day if epsilon_day is None else epsilon_day)
    refresh_server(context)
    return share_privacy_json(context.store, domain)
