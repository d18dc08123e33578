"""The allow-list of report dimensions and their SQL on each source table.

A dimension is either event-level (a property of each event: page, name,
hostname, props, goal), visit-level (a property of the visit, taken from its
first event: source, utm, browser, geo...), or a time bucket. Stored dimensions
are declared with their column in ``collector.schema``. Identifiers only ever
come from the fixed maps below; the only free text, a custom property key, is
bound as a parameter.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from collector.reports.dates import DateRange, time_bucket
from collector.reports.params import Parameters
from collector.reports.place_names import country_names, region_names
from collector.schema import TIME_COLUMNS as RAW_TIME_COLUMNS
from collector.schema import Column, dimension_columns

if TYPE_CHECKING:  # request imports this module: its type only at check time
    from collector.reports.request import QuerySpec

EVENTS = "events"
VISITS = "visits"
EVENTS_ROLLUP = "events_rollup"
VISITS_ROLLUP = "visits_rollup"
PROPS_PREFIX = "event:props:"
MAX_PROP_KEY_LENGTH = 300
# What Plausible shows for an event without the custom property; also what a filter names
# to find those events (["is", "event:props:author", ["(none)"]]).
NO_PROP_LABEL = "(none)"
# ``time`` is the bucket Plausible picks from the range (dates.time_bucket), resolved once
# the range is known (resolved_time).
TIME = "time"


@dataclass(frozen=True)
class Dimension:
    name: str
    level: str  # event | visit | time
    column: str  # column in the raw table of its level (events or visits)
    in_rollup: bool = True  # the rollup of its level can answer it
    blank_label: str = ""  # what an empty value is shown as


def _declared(column: Column) -> tuple[str, Dimension]:
    level = "event" if column.level == "event" else "visit"
    return column.dimension, Dimension(column.dimension, level, column.name, column.in_rollup,
                                       column.blank_label)


def _named(name: str, coded: str) -> tuple[str, Dimension]:
    """A place's name, read from the column of its code (``visit:country``'s)."""
    stored = dict(_declared(column) for column in dimension_columns())[coded]
    return name, dataclasses.replace(stored, name=name)


# Column dimensions come from the schema declaration; place names from the columns of their
# codes; the goal and time buckets are computed, not stored.
DIMENSIONS: dict[str, Dimension] = {
    **dict(_declared(column) for column in dimension_columns()),
    # Cities are stored by name already (collector.enrich.geo).
    **dict(_named(f"visit:{place}_name", f"visit:{place}") for place in ("country", "region",
                                                                        "city")),
    "event:goal": Dimension("event:goal", "event", ""),
    TIME: Dimension(TIME, "time", ""),
    "time:hour": Dimension("time:hour", "time", "toStartOfHour"),
    "time:day": Dimension("time:day", "time", "toDate"),
    "time:week": Dimension("time:week", "time", "toMonday"),
    "time:month": Dimension("time:month", "time", "toStartOfMonth"),
}

# The time column each source buckets by: visits count where they start.
TIME_COLUMNS = {**RAW_TIME_COLUMNS, EVENTS_ROLLUP: "hour", VISITS_ROLLUP: "hour"}
RAW_TIME_COLUMN_NAMES = frozenset(RAW_TIME_COLUMNS.values())


def moment_sql(column: str, seconds_placeholder: str) -> str:
    """A bound for ``column`` at a whole UTC second given as a UInt32 placeholder.

    The raw tables' times have milliseconds: against them the bound must be a
    DateTime64 too. Compared with a DateTime, ClickHouse (26.9) prunes a part whose
    times all lie in the last second before the bound, so a flush written at
    23:59:59.4 vanished from that day's report.
    """
    if column in RAW_TIME_COLUMN_NAMES:
        return f"toDateTime64({seconds_placeholder}, 3, 'UTC')"
    return f"toDateTime({seconds_placeholder}, 'UTC')"


def is_known_dimension(name: str) -> bool:
    if name.startswith(PROPS_PREFIX):
        key = name[len(PROPS_PREFIX):]
        return 0 < len(key) <= MAX_PROP_KEY_LENGTH
    return name in DIMENSIONS


def dimension(name: str) -> Dimension:
    if name.startswith(PROPS_PREFIX):
        return Dimension(name, "event", "", in_rollup=False, blank_label=NO_PROP_LABEL)
    return DIMENSIONS[name]


def resolved_time(spec: QuerySpec, period: DateRange) -> QuerySpec:
    """``spec`` with the ``time`` dimension (and its ordering) as the bucket ``period`` takes."""
    if TIME not in spec.dimensions:
        return spec
    bucket = time_bucket(period)
    return dataclasses.replace(
        spec, dimensions=tuple(bucket if name == TIME else name for name in spec.dimensions),
        order_by=tuple((bucket if name == TIME else name, direction)
                       for name, direction in spec.order_by))


def time_bucket_sql(name: str, column: str, params: Parameters, timezone: str,
                    first_day: date | None) -> str:
    """The local bucket of ``column``: a week begun before the range's ``first_day`` is
    labelled by that day, as Plausible labels it (dates.bucket_labels)."""
    bucket = f"{dimension(name).column}({column}, {params.bind(timezone)})"
    if name == "time:week" and first_day is not None:
        return f"greatest({bucket}, {params.bind(first_day, 'Date')})"
    return bucket if name != "time:hour" else f"toString({bucket})"


def raw_table_of(level: str) -> str:
    return EVENTS if level == "event" else VISITS


def rollup_key(name: str) -> str:
    """The ``dimension`` value of ``visits_rollup`` rows holding this dimension."""
    return dimension(name).column


def value_sql(name: str, source: str, params: Parameters, timezone: str,
              goal_sql: str = "", first_day: date | None = None) -> str:
    """The SQL expression of dimension ``name`` as read from ``source``.

    ``goal_sql`` is the goal expression (``collector.reports.goals``) for ``event:goal``;
    ``first_day`` the range's first local day, which labels a week begun before it.
    """
    spec = dimension(name)
    if spec.level == "time":
        return time_bucket_sql(name, TIME_COLUMNS[source], params, timezone, first_day)
    if name == "event:goal":
        return goal_sql
    if name.startswith(PROPS_PREFIX):
        key = params.bind(name[len(PROPS_PREFIX):])
        return f"prop_values[indexOf(prop_keys, {key})]"
    stored = "value" if source == VISITS_ROLLUP else spec.column
    return _place_name_sql(name, stored, params)


def _place_name_sql(name: str, stored: str, params: Parameters) -> str:
    """``stored`` (a code) as its English name for the ``_name`` dimensions, else as is.

    A region a flat database stored by name (``GB-England``, collector.enrich.geo) has no
    code to look up: its name is the part after the country.
    """
    if name == "visit:country_name":
        codes, names = country_names()
        fallback = "''"
    elif name == "visit:region_name":
        codes, names = region_names()
        fallback = f"substring({stored}, 4)"
    else:
        return stored
    return (f"transform({stored}, {params.bind(codes, 'Array(String)')}, "
            f"{params.bind(names, 'Array(String)')}, {fallback})")


def shown_sql(name: str, expression: str) -> str:
    """``expression`` with an empty value shown as the dimension's blank label."""
    label = dimension(name).blank_label
    if not label:
        return expression
    return f"if({expression} = '', '{label}', {expression})"
