"""The allow-list of report dimensions and their SQL on each source table.

A dimension is either event-level (a property of each event: page, name,
hostname, props, goal), visit-level (a property of the visit, taken from its
first event: source, utm, browser, geo...), or a time bucket. Stored dimensions
are declared with their column in ``collector.schema``. Identifiers only ever
come from the fixed maps below; the only free text, a custom property key, is
bound as a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.reports.params import Parameters
from collector.schema import TIME_COLUMNS as RAW_TIME_COLUMNS
from collector.schema import Column, dimension_columns

EVENTS = "events"
VISITS = "visits"
EVENTS_ROLLUP = "events_rollup"
VISITS_ROLLUP = "visits_rollup"
PROPS_PREFIX = "event:props:"
MAX_PROP_KEY_LENGTH = 300


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


# Column dimensions come from the schema declaration; the goal and time buckets are
# computed, not stored.
DIMENSIONS: dict[str, Dimension] = {
    **dict(_declared(column) for column in dimension_columns()),
    "event:goal": Dimension("event:goal", "event", ""),
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
        return Dimension(name, "event", "", in_rollup=False)
    return DIMENSIONS[name]


def raw_table_of(level: str) -> str:
    return EVENTS if level == "event" else VISITS


def rollup_key(name: str) -> str:
    """The ``dimension`` value of ``visits_rollup`` rows holding this dimension."""
    return dimension(name).column


def value_sql(name: str, source: str, params: Parameters, timezone: str,
              goal_sql: str = "") -> str:
    """The SQL expression of dimension ``name`` as read from ``source``.

    ``goal_sql`` is the goal expression (``collector.reports.goals``) for ``event:goal``.
    """
    spec = dimension(name)
    if spec.level == "time":
        bucket = f"{spec.column}({TIME_COLUMNS[source]}, {params.bind(timezone)})"
        return bucket if spec.column != "toStartOfHour" else f"toString({bucket})"
    if name == "event:goal":
        return goal_sql
    if name.startswith(PROPS_PREFIX):
        key = params.bind(name[len(PROPS_PREFIX):])
        return f"prop_values[indexOf(prop_keys, {key})]"
    if source == VISITS_ROLLUP:
        return "value"
    return spec.column


def shown_sql(name: str, expression: str) -> str:
    """``expression`` with an empty value shown as the dimension's blank label."""
    label = dimension(name).blank_label
    if not label:
        return expression
    return f"if({expression} = '', '{label}', {expression})"
