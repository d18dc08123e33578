"""Every stored column, declared once.

The ``events`` and ``visits`` tables, the ``Event`` value and the typed visit
row, the report dimensions, the rollup views' dimension lists and the demo
generator's column lists all come from the declarations below; nothing else
names a stored column by hand. ``collector.storage.schema_check`` compares a
migrated store with them (types, codecs, the views' dimensions) and refuses to
start on any drift, so a column added here without its migration fails loudly.

Levels:
    event   a fact of each event (its name, page, props, time)
    visit   a fact of the visit, taken from its first event (source, campaign,
            browser, location...), stored on the visit and on each of its events
    visits  computed by the visit tracker, stored in ``visits`` only

Adding a report dimension: declare its column here (``dimension=`` and, when
the daily rollup should answer it, ``in_rollup=True``), then add a migration
that adds the column and recreates the rollup views with the new dimension
list (see docs/architecture.md, "Adding a dimension").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["event", "visit", "visits"]

# Codecs, measured on 10M demo events (README "Storage"): ZSTD beats the default
# LZ4 by a third on every column; Delta only helps columns that increase along
# the sort key (an event's time within its visitor), and hurts random hashes.
ZSTD = "ZSTD(1)"
DELTA_ZSTD = "Delta(8), ZSTD(1)"
T64_ZSTD = "T64, ZSTD(1)"
DEFAULT_CODEC = ""  # the server's (LZ4)
STRING = "String"
# Dictionary-encoded: worthwhile up to some tens of thousands of distinct values
# per part, which pages, referrers and every client attribute stay within.
LOW_CARDINALITY = "LowCardinality(String)"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # ClickHouse type
    level: Level
    codec: str = ZSTD
    dimension: str = ""  # its report dimension ("visit:source"), if it is one
    blank_label: str = ""  # what reports show for an empty value
    in_rollup: bool = False  # the daily rollup of its table carries this dimension

    @property
    def ddl(self) -> str:
        """The column as it appears in CREATE TABLE."""
        codec = f" CODEC({self.codec})" if self.codec else ""
        return f"{self.name} {self.type}{codec}"


def _visit_attribute(name: str, type: str = LOW_CARDINALITY, dimension: str = "",
                     blank_label: str = "", in_rollup: bool = True) -> Column:
    return Column(name, type, "visit", dimension=dimension or f"visit:{name}",
                  blank_label=blank_label, in_rollup=in_rollup)


# What a visit takes from its first event, in table order (both tables).
# Blank labels are Plausible's: "Direct / None" for no referrer, "(not set)" for a
# campaign tag or client attribute the visit lacks.
NO_REFERRER = "Direct / None"
NOT_SET = "(not set)"
VISIT_ATTRIBUTES: tuple[Column, ...] = (
    # The visit's first event's host: its entry page's.
    Column("hostname", LOW_CARDINALITY, "visit", dimension="visit:entry_page_hostname"),
    _visit_attribute("referrer", blank_label=NO_REFERRER),
    _visit_attribute("referrer_source", dimension="visit:source", blank_label=NO_REFERRER),
    Column("referrer_medium", LOW_CARDINALITY, "visit"),
    _visit_attribute("utm_source", blank_label=NOT_SET),
    _visit_attribute("utm_medium", blank_label=NOT_SET),
    _visit_attribute("utm_campaign", STRING, blank_label=NOT_SET),
    _visit_attribute("utm_term", STRING, blank_label=NOT_SET),
    _visit_attribute("utm_content", STRING, blank_label=NOT_SET),
    _visit_attribute("browser", blank_label=NOT_SET),
    _visit_attribute("browser_version", blank_label=NOT_SET),
    _visit_attribute("os", blank_label=NOT_SET),
    _visit_attribute("os_version", blank_label=NOT_SET),
    _visit_attribute("device", blank_label=NOT_SET),
    _visit_attribute("screen", blank_label=NOT_SET),  # a size class, never the exact width
    _visit_attribute("language"),
    _visit_attribute("country"),
    _visit_attribute("region"),
    _visit_attribute("city"),
    _visit_attribute("isp"),
)

# No column can hold an IP address, a raw user agent, a query string or an exact
# screen size: what is not declared here cannot be stored.
# New columns go at the end of a table: rows a write-ahead log holds from before an
# upgrade fill its first columns on replay (collector.writer), the new ones get defaults.
EVENTS_TABLE: tuple[Column, ...] = (
    Column("site", LOW_CARDINALITY, "event"),
    Column("timestamp", "DateTime64(3, 'UTC')", "event", DELTA_ZSTD),  # the server's clock
    Column("name", LOW_CARDINALITY, "event", dimension="event:name", in_rollup=True),
    Column("visitor", "UInt64", "event"),  # keyed hash under the day's salt
    Column("visit", "UInt64", "event"),  # 0 when the event belongs to no visit
    Column("hostname", LOW_CARDINALITY, "event", dimension="event:hostname", in_rollup=True),
    Column("pathname", LOW_CARDINALITY, "event", dimension="event:page", in_rollup=True),
    *(column for column in VISIT_ATTRIBUTES if column.name != "hostname"),
    Column("prop_keys", "Array(String)", "event"),
    Column("prop_values", "Array(String)", "event"),
    Column("interactive", "UInt8", "event"),
    Column("scroll_depth", "UInt8", "event"),
    Column("engaged_ms", "UInt32", "event", T64_ZSTD),
    # An event's revenue (Events API ``$``), in millionths of its currency: exact sums.
    Column("revenue_amount", "Int64", "event"),
    Column("revenue_currency", LOW_CARDINALITY, "event"),  # ISO 4217; "" without revenue
)

VISITS_TABLE: tuple[Column, ...] = (
    Column("site", LOW_CARDINALITY, "visits"),
    Column("visitor", "UInt64", "visits"),
    Column("visit", "UInt64", "visits"),
    Column("start_time", "DateTime64(3, 'UTC')", "visits"),
    Column("duration", "UInt32", "visits", T64_ZSTD),  # seconds
    Column("pageviews", "UInt32", "visits", T64_ZSTD),
    Column("events", "UInt32", "visits", T64_ZSTD),
    Column("interactive_events", "UInt32", "visits", T64_ZSTD),
    Column("is_bounce", "UInt8", "visits"),
    Column("engaged_ms", "UInt32", "visits", T64_ZSTD),
    Column("entry_page", LOW_CARDINALITY, "visits", dimension="visit:entry_page",
           in_rollup=True),
    # Not in the rollup: the exit page changes within a visit, and a rollup row
    # cannot forget the old one, so exit pages come from the collapsed table.
    Column("exit_page", LOW_CARDINALITY, "visits", dimension="visit:exit_page"),
    *VISIT_ATTRIBUTES[:4],
    Column("channel", LOW_CARDINALITY, "visits", dimension="visit:channel", in_rollup=True),
    *VISIT_ATTRIBUTES[4:],
    # The engine's own columns keep the default codec: ClickHouse forbids altering them.
    Column("sign", "Int8", "visits", DEFAULT_CODEC),  # +1 a visit state, -1 its cancellation
    Column("version", "UInt32", "visits", DEFAULT_CODEC),
    # The host of the visit's last page: like the exit page, it changes within a visit.
    Column("exit_hostname", LOW_CARDINALITY, "visits", dimension="visit:exit_page_hostname"),
)

TABLES: dict[str, tuple[Column, ...]] = {"events": EVENTS_TABLE, "visits": VISITS_TABLE}
# The column each raw table is partitioned, kept (TTL) and reported by: visits count
# where they start.
TIME_COLUMNS: dict[str, str] = {"events": "timestamp", "visits": "start_time"}


def column_names(table: str) -> tuple[str, ...]:
    return tuple(column.name for column in TABLES[table])


def dimension_columns() -> list[Column]:
    """Every column that is a report dimension: event ones from ``events``, visit ones
    from ``visits`` (the copies of visit attributes on events are not read by reports)."""
    return [column for column in EVENTS_TABLE if column.dimension and column.level == "event"] \
        + [column for column in VISITS_TABLE if column.dimension]


def rollup_dimensions(table: str) -> tuple[str, ...]:
    """The columns of ``table`` its daily rollup carries, in declaration order.

    ``visits_rollup_daily`` holds one row per (day, dimension, value) for each of
    them; ``events_rollup_daily`` one row per (day, name, hostname, pathname).
    """
    return tuple(column.name for column in TABLES[table]
                 if column.in_rollup and (table == "visits" or column.level == "event"))
