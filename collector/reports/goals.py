"""A site's goals: page globs (pageviews whose path matches) or custom event names.

``event:goal`` is a dimension like any other: a goal expression turns each event
into the goals it completes (``arrayJoin`` drops events completing none), built
from the goal list with every name and pattern bound as a parameter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from collector.currencies import CURRENCIES
from collector.errors import InvalidField
from collector.reports.params import Parameters
from collector.reports.patterns import literal_pattern
from collector.storage import Store

PAGE = "page"
EVENT = "event"
MAX_GOAL_NAME = 120


@dataclass(frozen=True)
class Goal:
    name: str
    kind: str  # page | event
    pattern: str  # page glob, or the custom event name
    currency: str = ""  # a revenue goal's ISO 4217 currency (custom events only)


def glob_to_regex(glob: str) -> str:
    """``/blog/*`` matches one path segment, ``/docs/**`` any depth; anchored both ends."""
    any_depth = ("[^/]*".join(literal_pattern(piece) for piece in part.split("*"))
                 for part in glob.split("**"))
    return f"^{'.*'.join(any_depth)}$"


def condition_sql(goal: Goal, params: Parameters) -> str:
    """SQL true for an event (or events_rollup row) that completes ``goal``."""
    if goal.kind == PAGE:
        pattern = params.bind(glob_to_regex(goal.pattern))
        return f"(name = 'pageview' AND match(pathname, {pattern}))"
    return f"(name = {params.bind(goal.pattern)})"


def goal_dimension_sql(goals: list[Goal], params: Parameters) -> str:
    """One row per goal an event completes; events completing none drop out."""
    if not goals:
        return "arrayJoin(CAST([], 'Array(String)'))"
    labelled = ", ".join(f"if({condition_sql(goal, params)}, {params.bind(goal.name)}, '')"
                         for goal in goals)
    return f"arrayJoin(arrayFilter(goal -> goal != '', [{labelled}]))"


def list_goals(store: Store, site: str) -> list[Goal]:
    rows = store.rows(
        "SELECT name, kind, pattern, currency FROM goals FINAL WHERE site = {site:String} "
        "AND deleted = 0 ORDER BY name", {"site": site})
    return [Goal(*row) for row in rows]


def add_goal(store: Store, site: str, kind: str, pattern: str, name: str = "",
             currency: str = "") -> Goal:
    if kind not in (PAGE, EVENT):
        raise InvalidField("a goal is a page glob or an event name", "kind")
    if not pattern or len(pattern) > MAX_GOAL_NAME:
        raise InvalidField(f"must be 1 to {MAX_GOAL_NAME} characters", "pattern")
    if kind == PAGE and not pattern.startswith("/"):
        raise InvalidField("a page goal is a path glob starting with /", "pattern")
    if currency and (kind != EVENT or currency not in CURRENCIES):
        raise InvalidField("a revenue goal is a custom event goal with an ISO 4217 currency "
                           "code (EUR, USD...)", "currency")
    goal = Goal(name or (f"Visit {pattern}" if kind == PAGE else pattern), kind, pattern,
                currency)
    _save(store, site, goal, deleted=False)
    return goal


def remove_goal(store: Store, site: str, name: str) -> bool:
    existing = {goal.name: goal for goal in list_goals(store, site)}.get(name)
    if existing is None:
        return False
    _save(store, site, existing, deleted=True)
    return True


def _save(store: Store, site: str, goal: Goal, deleted: bool) -> None:
    store.command(
        "INSERT INTO goals (site, name, kind, pattern, currency, deleted, version) VALUES "
        "({site:String}, {name:String}, {kind:String}, {pattern:String}, {currency:String}, "
        "{deleted:UInt8}, {version:UInt64})",
        {"site": site, "name": goal.name, "kind": goal.kind, "pattern": goal.pattern,
         "currency": goal.currency, "deleted": int(deleted), "version": time.time_ns()})
