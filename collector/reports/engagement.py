"""Engagement metrics, ``scroll_depth`` and ``time_on_page``, as Plausible's Stats API v2 has them.

For each page it counted, the tracker sends ``engagement`` events: when the page is
hidden or loses focus and before the next page of a single-page app, each with the
deepest scroll so far (``sd``, percent) and the time engaged since its last report
(``e``, ms). They are stored as events named ``engagement`` (``scroll_depth``,
``engaged_ms``) on the page and visit of their pageview.

- ``scroll_depth``: per visit, the deepest scroll its engagement events report on the
  row's pages, averaged over those visits; a whole percent, null when none reported.
- ``time_on_page``: the engaged time of the row's engagement events, summed, divided by
  the visits that reported it; whole seconds, null when none reported.

Both need ``event:page`` as a dimension or a top-level filter, as on Plausible, and
are event metrics: the visits table knows nothing of engagement, so a visit dimension
or metric cannot go with them. They are read from raw events only (no rollup holds
them): such a query keeps the engagement events every other query leaves out, the
other components skip them (``collector.reports.metrics``), and a row made of
engagement events alone (a page viewed before the range began) is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from collector.errors import InvalidField
from collector.reports.metrics import ENGAGEMENT_METRICS
from collector.reports.request import Condition, QuerySpec

PAGE = "event:page"
# The rows of such a query that have events besides engagement (exactly: visitors may
# come from a sample).
WITH_OTHER_EVENTS = "countIf(name != 'engagement') > 0"


def reads_engagement(metrics: Sequence[str]) -> bool:
    return any(name in ENGAGEMENT_METRICS for name in metrics)


def check_engagement(spec: QuerySpec, level: str) -> None:
    """Refuse an engagement metric without ``event:page``, or at visit level."""
    page_filtered = any(isinstance(item, Condition) and item.dimension == PAGE
                        for item in spec.filters)
    for index, name in enumerate(spec.metrics):
        if name not in ENGAGEMENT_METRICS:
            continue
        if PAGE not in spec.dimensions and not page_filtered:
            raise InvalidField(f"Metric `{name}` can only be queried with event:page filters "
                               "or dimensions.", f"metrics[{index}]")
        if level == "visit":
            raise InvalidField(f"{name} is an event metric (engagement is stored on events): "
                               "break it down by event dimensions or time, without visit "
                               "metrics", f"metrics[{index}]")
