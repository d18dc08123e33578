"""Revenue metrics: ``total_revenue`` and ``average_revenue``, in a revenue goal's currency.

As in Plausible, a custom-event goal may have a currency (a revenue goal). The revenue
of an event counts when the event completes a revenue goal and carries revenue in that
goal's currency: Plausible converts other currencies at ingest with exchange rates from
a third party, the collector asks no one and converts nothing. A report shows each
revenue metric as Plausible does, ``{"value": 12.5, "currency": "EUR", "short": "€12.5",
"long": "€12.50"}``, or null with a ``meta.metric_warnings`` entry: no revenue goal in
the report's scope (``no_revenue_goals_matching``), or revenue goals of several
currencies in a report that is not broken down by ``event:goal``
(``no_single_revenue_currency``). The scope is every revenue goal, narrowed by the
top-level ``event:goal`` filters that name goals (``is``, ``contains`` and their ``_not``;
a ``matches`` filter is matched by ClickHouse only, so it narrows nothing here).

Revenue is read from raw events only (no rollup holds it), and only at event level: the
visits table has no revenue, so a visit dimension or metric cannot be combined with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collector.currencies import MINOR_UNITS, SYMBOLS
from collector.errors import InvalidField
from collector.reports.goals import EVENT, Goal
from collector.reports.metrics import REVENUE_METRICS
from collector.reports.params import Parameters
from collector.reports.request import Condition, QuerySpec

GOAL_DIMENSION = "event:goal"
NO_REVENUE_GOALS = "no_revenue_goals_matching"
SEVERAL_CURRENCIES = "no_single_revenue_currency"
WARNINGS = {
    NO_REVENUE_GOALS: "Revenue metrics are null: no revenue goal (a custom event goal with "
                      "a currency) is in this report.",
    SEVERAL_CURRENCIES: "Revenue metrics are null: the revenue goals of this report have "
                        "several currencies; break it down by event:goal.",
}
_SHORT_UNITS = ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K"))


def uses_revenue(metrics: Sequence[str]) -> bool:
    return any(name in REVENUE_METRICS for name in metrics)


def refuse_public_revenue(spec: QuerySpec) -> None:
    """Share links release no revenue: their noise is scaled to what one visitor can add to
    a count, and one purchase can add any amount."""
    for index, name in enumerate(spec.metrics):
        if name in REVENUE_METRICS:
            raise InvalidField("revenue metrics are not shown through share links",
                               f"metrics[{index}]")


def revenue_goals(goals: Sequence[Goal]) -> list[Goal]:
    return [goal for goal in goals if goal.currency and goal.kind == EVENT]


def counted_sql(goals: Sequence[Goal], params: Parameters) -> str:
    """SQL true for an event whose revenue counts: in the currency of its revenue goal."""
    chosen = revenue_goals(goals)
    if not chosen:
        return "0"
    names = params.bind([goal.pattern for goal in chosen], "Array(String)")
    currencies = params.bind([goal.currency for goal in chosen], "Array(String)")
    return (f"(revenue_currency != '' AND "
            f"revenue_currency = transform(toString(name), {names}, {currencies}, ''))")


def present(spec: QuerySpec, goals: Sequence[Goal], results: list[dict[str, Any]],
            meta: dict[str, Any]) -> None:
    """Turn the revenue amounts of ``results`` into Plausible's money objects, or null
    with a warning in ``meta`` when the report has no single currency."""
    if not uses_revenue(spec.metrics):
        return
    scope = _in_scope(spec, revenue_goals(goals))
    currencies = {goal.currency for goal in scope}
    by_goal = GOAL_DIMENSION in spec.dimensions
    warning = NO_REVENUE_GOALS if not currencies else (
        SEVERAL_CURRENCIES if len(currencies) > 1 and not by_goal else None)
    if warning:
        meta.setdefault("metric_warnings", {}).update(
            {name: {"code": warning, "warning": WARNINGS[warning]}
             for name in spec.metrics if name in REVENUE_METRICS})
    goal_currency = {goal.name: goal.currency for goal in scope}
    single = next(iter(currencies)) if len(currencies) == 1 and not by_goal else None
    goal_index = spec.dimensions.index(GOAL_DIMENSION) if by_goal else -1
    for result in results:
        currency = goal_currency.get(result["dimensions"][goal_index]) if by_goal else single
        _shape(spec.metrics, result["metrics"], currency)
        if "comparison" in result:
            compared = result["comparison"]
            _shape(spec.metrics, compared["metrics"], currency)
            if currency is None:
                compared["change"] = [None if name in REVENUE_METRICS else value
                                      for name, value in zip(spec.metrics, compared["change"])]


def money(value: float, currency: str) -> dict[str, Any]:
    """Plausible's shape of an amount: the number, its currency and two ways to write it."""
    return {"short": _short(value, currency), "long": _long(value, currency),
            "value": value, "currency": currency}


def _shape(names: Sequence[str], values: list[Any], currency: str | None) -> None:
    for index, name in enumerate(names):
        if name in REVENUE_METRICS:
            values[index] = money(values[index], currency) if currency else None


def _in_scope(spec: QuerySpec, goals: list[Goal]) -> list[Goal]:
    """The revenue goals the report's top-level goal filters leave (Plausible's scope)."""
    for item in spec.filters:
        if isinstance(item, Condition) and item.dimension == GOAL_DIMENSION:
            goals = [goal for goal in goals if _kept(item, goal.name)]
    return goals


def _kept(item: Condition, name: str) -> bool:
    if item.operator.startswith("is"):
        named = name in item.values
    elif item.operator.startswith("contains"):
        named = any(value in name for value in item.values)
    else:
        return True  # matches: patterns are matched by ClickHouse only
    return named != item.operator.endswith("_not")


def _long(value: float, currency: str) -> str:
    digits = MINOR_UNITS.get(currency, 2)
    return _signed(value, currency, f"{abs(value):,.{digits}f}")


def _short(value: float, currency: str) -> str:
    size = abs(value)
    for unit, letter in _SHORT_UNITS:
        if size >= unit:
            return _signed(value, currency, f"{size / unit:.1f}{letter}")
    return _signed(value, currency, f"{size:.1f}")


def _signed(value: float, currency: str, number: str) -> str:
    symbol = SYMBOLS.get(currency)
    written = f"{symbol}{number}" if symbol else f"{currency}\u00a0{number}"
    return f"-{written}" if value < 0 else written
