"""The allow-list of report dimensions and their SQL on each source table.

A dimension is either event-level (a property of each event: page, name,
hostname, props, goal), visit-level (a property of the visit, taken from its
first event: source, utm, browser, geo...), or a time bucket. Identifiers only
ever come from the fixed maps below; the only free text, a custom property
key, is bound as a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.reports.params import Parameters

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


def _visit(column: str, blank_label: str = "", in_rollup: bool = True) -> tuple[str, Dimension]:
    name = {"referrer_source": "source", "entry_page": "entry_page"}.get(column, column)
    return f"visit:{name}", Dimension(f"visit:{name}", "visit", column, in_rollup, blank_label)


DIMENSIONS: dict[str, Dimension] = dict([
    ("event:page", Dimension("event:page", "event", "pathname")),
    ("event:name", Dimension("event:name", "event", "name")),
    ("event:hostname", Dimension("event:hostname", "event", "hostname")),
    ("event:goal", Dimension("event:goal", "event", "")),
    _visit("entry_page"),
    ("visit:exit_page", Dimension("visit:exit_page", "visit", "exit_page", in_rollup=False)),
    _visit("referrer_source", blank_label="Direct / None"),
    _visit("referrer"),
    _visit("channel"),
    _visit("utm_source"),
    _visit("utm_medium"),
    _visit("utm_campaign"),
    _visit("utm_term"),
    _visit("utm_content"),
    _visit("browser"),
    _visit("browser_version"),
    _visit("os"),
    _visit("os_version"),
    _visit("device"),
    _visit("country"),
    _visit("region"),
    _visit("city"),
    _visit("language"),
    _visit("isp"),
    ("time:hour", Dimension("time:hour", "time", "toStartOfHour")),
    ("time:day", Dimension("time:day", "time", "toDate")),
    ("time:week", Dimension("time:week", "time", "toMonday")),
    ("time:month", Dimension("time:month", "time", "toStartOfMonth")),
])

# The time column each source buckets by: visits count where they start.
TIME_COLUMNS = {EVENTS: "timestamp", VISITS: "start_time", EVENTS_ROLLUP: "hour",
                VISITS_ROLLUP: "hour"}


def is_known_dimension(name: str) -> bool:
    if name.startswith(PROPS_PREFIX):
        key = name[len(PROPS_PREFIX):]
        return 0 < len(key) <= MAX_PROP_KEY_LENGTH
    return name in DIMENSIONS


def dimension(name: str) -> Dimension:
    if name.startswith(PROPS_PREFIX):
        return Dimension(name, "event", "", in_rollup=False)
    return DIMENSIONS[name]


def level_of(name: str) -> str:
    return dimension(name).level


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
