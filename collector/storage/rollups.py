"""The SELECTs of the rollup views, generated from the dimension lists of ``collector.schema``.

The same text serves three places, so they cannot disagree: the materialized
views the migrations create (``{{visits_rollup_daily_select: DIMENSIONS}}`` in
a migration file), the backfill of a dimension added later, and the reports,
which roll up the edge hours of a range at query time from the raw rows.

Rollups hold exact sums and two visitor samples: 1/16 (visitor < 2^60) and
1/256 (visitor < 2^56), the same rows as ``SAMPLE 1/16`` on the raw tables,
which are ``SAMPLE BY visitor``. Sums over ``sign`` make a visit's -1/+1 update
pairs cancel exactly; a cancelled row has the same visitor as its replacement,
so the samples are unaffected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from collector.schema import rollup_dimensions

SIXTEENTH, TWO_HUNDRED_FIFTY_SIXTH = 2 ** 60, 2 ** 56

VISIT_AGGREGATES = (
    f"uniqStateIf(visitor, visitor < {SIXTEENTH}) AS visitors_s16, "
    f"uniqStateIf(visitor, visitor < {TWO_HUNDRED_FIFTY_SIXTH}) AS visitors_s256, "
    "sum(toInt64(sign)) AS visits, sum(sign * toInt64(pageviews)) AS pageviews, "
    "sum(sign * toInt64(events)) AS events, sum(sign * toInt64(is_bounce)) AS bounces, "
    "sum(sign * toInt64(duration)) AS duration")
EVENT_AGGREGATES = (
    f"uniqStateIf(visitor, visitor < {SIXTEENTH}) AS visitors_s16, "
    f"uniqStateIf(visitor, visitor < {TWO_HUNDRED_FIFTY_SIXTH}) AS visitors_s256, "
    f"uniqStateIf(visit, visitor < {SIXTEENTH}) AS visits_s16, "
    f"uniqStateIf(visit, visitor < {TWO_HUNDRED_FIFTY_SIXTH}) AS visits_s256, "
    "count() AS events")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def _checked(names: Sequence[str]) -> list[str]:
    """Column names only ever come from the schema; refuse anything else."""
    for name in names:
        if not _IDENTIFIER.match(name):
            raise ValueError(f"not a column name: {name!r}")
    return list(names)


def visits_rollup_select() -> str:
    """Site totals per UTC hour (``visits_rollup``)."""
    return (f"SELECT site, '' AS dimension, toStartOfHour(start_time) AS hour, '' AS value, "
            f"{VISIT_AGGREGATES} FROM visits GROUP BY site, hour")


def visits_rollup_daily_select(dimensions: Sequence[str], with_total: bool = True) -> str:
    """Per UTC day, the site total (dimension '') and one row per value of each dimension."""
    pairs = ([("''", "''")] if with_total else []) + [
        (f"'{name}'", f"toString({name})") for name in _checked(dimensions)]
    array = ", ".join(f"({key}, {value})" for key, value in pairs)
    return (f"SELECT site, pair.1 AS dimension, toStartOfDay(start_time) AS hour, "
            f"pair.2 AS value, {VISIT_AGGREGATES} FROM visits ARRAY JOIN [{array}] AS pair "
            "GROUP BY site, dimension, hour, value")


def events_rollup_daily_select(dimensions: Sequence[str]) -> str:
    """Per UTC day and (name, hostname, page); engagement events only refine durations."""
    keys = ", ".join(_checked(dimensions))
    return (f"SELECT site, toStartOfDay(timestamp) AS hour, {keys}, {EVENT_AGGREGATES} "
            f"FROM events WHERE name != 'engagement' GROUP BY site, hour, {keys}")


def visits_dimension_hours(dimension: str, site: str, during: str) -> str:
    """``visits_rollup``-shaped rows of one dimension per UTC hour, from the raw visits.

    ``site`` and ``during`` are SQL the caller built from bound parameters.
    """
    (column,) = _checked([dimension])
    return (f"SELECT site, '{column}' AS dimension, toStartOfHour(start_time) AS hour, "
            f"toString({column}) AS value, {VISIT_AGGREGATES} FROM visits "
            f"WHERE site = {site} AND {during} GROUP BY site, hour, value")


def events_hours(dimensions: Sequence[str], site: str, during: str) -> str:
    """``events_rollup_daily``-shaped rows per UTC hour, from the raw events."""
    keys = ", ".join(_checked(dimensions))
    return (f"SELECT site, toStartOfHour(timestamp) AS hour, {keys}, {EVENT_AGGREGATES} "
            f"FROM events WHERE site = {site} AND name != 'engagement' AND {during} "
            f"GROUP BY site, hour, {keys}")


def view_selects() -> dict[str, str]:
    """Each rollup table and the SELECT of the view that fills it, at the dimensions
    ``collector.schema`` declares (what erasure rolls up again)."""
    return {"visits_rollup": visits_rollup_select(),
            "visits_rollup_daily": visits_rollup_daily_select(rollup_dimensions("visits")),
            "events_rollup_daily": events_rollup_daily_select(rollup_dimensions("events"))}


# Every rollup table has its time bucket (hour or day) in ``hour``.
ROLLUP_TABLES = {table: "hour" for table in view_selects()}
# The tables of the rollup tier: the rollups, and the drop counts (``collector.drops``),
# which are aggregates too though counted at ingest rather than rolled up from raw rows.
AGGREGATE_TABLES = {**ROLLUP_TABLES, "drops": "hour"}


def dimensions_in_view(view_select: str) -> list[str]:
    """The dimensions a stored ``visits_rollup_daily`` view SELECT carries (drift checks)."""
    return re.findall(r"\('(\w+)', toString\(\w+\)\)", view_select)


RENDERERS = {
    "visits_rollup_select": lambda argument: visits_rollup_select(),
    "visits_rollup_daily_select": lambda argument: visits_rollup_daily_select(
        _listed(argument)),
    "events_rollup_daily_select": lambda argument: events_rollup_daily_select(
        _listed(argument)),
}


def _listed(argument: str) -> list[str]:
    return [name.strip() for name in argument.split(",") if name.strip()]
