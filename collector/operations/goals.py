"""Operations on a site's conversion goals: ``goals.add | list | remove``."""

from __future__ import annotations

from typing import Any

from collector.errors import InvalidField, NotFound
from collector.operations import OperationContext, operation
from collector.operations.sites import refresh_server
from collector.reports.goals import EVENT, PAGE, Goal, add_goal, list_goals, remove_goal
from collector.sites import check_allowed, domain_of


def _goal_json(site: str, goal: Goal) -> dict[str, Any]:
    return {"site": site, "name": goal.name, "kind": goal.kind, "pattern": goal.pattern,
            "currency": goal.currency}


@operation("goals.add")
def add(context: OperationContext, site: str, page: str | None = None,
        event: str | None = None, name: str = "", currency: str = "") -> dict[str, Any]:
    """A goal completed by pageviews matching the ``page`` glob, or by custom ``event``
    (a revenue goal with ``currency``: its revenue is reported in that currency)."""
    if (page is None) == (event is None):
        raise InvalidField("give either a page glob or an event name", "page")
    domain = check_allowed(context.store, site, context.settings.sites)
    kind, pattern = (PAGE, page) if page is not None else (EVENT, event or "")
    goal = add_goal(context.store, domain, kind, pattern, name, currency.upper())
    refresh_server(context)
    return _goal_json(domain, goal)


@operation("goals.list")
def list_all(context: OperationContext, site: str) -> dict[str, Any]:
    domain = domain_of(site, "site")
    return {"site": domain,
            "goals": [_goal_json(domain, goal) for goal in list_goals(context.store, domain)]}


@operation("goals.remove")
def remove(context: OperationContext, site: str, name: str) -> dict[str, Any]:
    domain = domain_of(site, "site")
    if not remove_goal(context.store, domain, name):
        raise NotFound(f"{domain} has no goal {name!r}", "name")
    refresh_server(context)
    return {"site": domain, "name": name, "removed": True}
