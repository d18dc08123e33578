"""How much one visitor may weigh in an answer to a share token, enforced in SQL.

Noise hides one visitor only if one visitor can move each released count by a known
amount. Visitors count once per row, but visits, pageviews, events and durations have
no natural limit (a tab left open, a bot-like reader). For share tokens the query is
therefore first grouped by (row, visitor); each visitor's sums are clipped to the
bounds below, and each visitor is kept in at most ``rows`` rows of the answer (chosen
by a hash of visitor and row, so the choice never depends on anyone else's data). The
clipped sums are then added up per row. A visitor thus changes, across the whole
answer, each count by at most ``rows`` times its bound: the sensitivity the noise is
scaled to (``collector.reports.release``; the argument is in docs/privacy.md).

Clipping costs accuracy only for visitors beyond a bound: share links undercount the
pageviews of someone reading more than ``pageviews`` pages a day, and a visitor seen in
more than ``rows`` rows (pages, hours...) counts in ``rows`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.errors import InvalidField

# The inner query's aliases: its grouped columns, and the visitor it groups by too.
PREFIX = "b_"
VISITOR = "b_visitor"


@dataclass(frozen=True)
class ContributionBounds:
    """Per visitor (one visitor hash: one browser on one site on one UTC day)."""

    rows: int = 4  # rows of one answer (dimension values x time buckets) a visitor counts in
    visits: int = 3  # per row
    pageviews: int = 8  # per row
    events: int = 8  # per row
    duration: int = 1800  # seconds of visit duration, per row

    def of(self, component: str) -> int:
        """The most one visitor adds to ``component`` in one row."""
        bounds = {"visitors": 1, "visits": self.visits, "pageviews": self.pageviews,
                  "events": self.events, "bounces": self.visits, "entries": self.visits,
                  "duration": self.duration, "entry_duration": self.duration,
                  # A group's visitors (collector.reports.secondary), counted like visitors.
                  "group_visitors": 1,
                  # Engagement (collector.reports.engagement): per visit at most 100% deep
                  # and, like a visit's duration, the bound's seconds.
                  "engaged_visits": self.visits, "scroll": 100 * self.visits,
                  "engaged_ms": 1000 * self.duration}
        if component not in bounds:
            # Promise: nothing reaches a share link without a bound its noise is scaled to.
            raise InvalidField(f"{component} cannot be shown through a share link: one "
                               "visitor's share of it has no bound", "metrics")
        return bounds[component]

    def as_json(self) -> dict[str, int]:
        return {"rows": self.rows, "visits": self.visits, "pageviews": self.pageviews,
                "events": self.events, "duration_seconds": self.duration}


SHARE_BOUNDS = ContributionBounds()


def bounded_sql(inner: str, aliases: list[str], components: tuple[str, ...], prefix: str,
                bounds: ContributionBounds) -> str:
    """Sum ``inner``'s per-(row, visitor) components per row, each visitor clipped.

    ``inner`` selects ``b_<alias>`` for the row's dimensions, ``b_visitor`` and
    ``b_c_<component>``, grouped by all of them but the components; the result names
    them ``<prefix><alias>`` and ``<prefix>c_<component>``, as an unbounded query would.
    """
    keys = [PREFIX + alias for alias in aliases]
    limited = inner
    if keys:
        # Promise: one visitor moves at most `rows` rows of a public answer.
        limited = (f"SELECT * FROM ({inner}) AS per_visitor ORDER BY {VISITOR}, "
                   f"cityHash64({VISITOR}, {', '.join(keys)}) LIMIT {int(bounds.rows)} BY "
                   f"{VISITOR}")
    selected = [f"{key} AS {prefix}{alias}" for key, alias in zip(keys, aliases)]
    selected += [f"sum(least({PREFIX}c_{part}, {int(bounds.of(part))})) AS {prefix}c_{part}"
                 for part in components]
    sql = f"SELECT {', '.join(selected)} FROM ({limited}) AS bounded"
    return sql + (f" GROUP BY {', '.join(keys)}" if keys else "")
