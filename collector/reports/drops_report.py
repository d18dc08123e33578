"""``POST /api/v2/drops``: what ingest filtered out for a site, by reason, over a date range.

The ``drops`` table counts per UTC hour (``collector.drops``); a range in the site's
timezone reads the UTC hours that begin in it, and each hour is counted in the local
bucket where it begins. In a timezone whose offset is not a whole number of hours
(Asia/Kolkata, +05:30) a local day is thus read from 00:30 to 00:30: an approximation,
but no hour is ever counted in two adjacent days. Every reason is answered, 0 when
none, and with a time dimension every bucket of the range.

Public share links see counts below the site's public k as ``null`` (``meta.suppressed``
says so): a count of one or two in an hour could point at a single visitor. The other
counts are released with noise (``collector.reports.release``): a request is counted in
one cell only, and nothing of it is stored to bound a person's requests by, so their
privacy is that of a request (docs/privacy.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from collector.drops import REASONS
from collector.errors import InvalidField
from collector.reports.builder import SiteContext
from collector.reports.csv import csv_lines
from collector.reports.dates import bucket_labels, resolve
from collector.reports.dimensions import time_bucket_sql
from collector.reports.params import Parameters
from collector.reports.release import Releaser, Table
from collector.reports.request import parse_date_range, parse_site_id
from collector.storage import Store

TIME_DIMENSIONS = ("time:hour", "time:day", "time:week", "time:month")
# Rows are buckets × reasons: hours are refused beyond this many (about 13 months).
MAX_BUCKETS = 10_000
_FIELDS = ("site_id", "date_range", "dimensions")


@dataclass(frozen=True)
class DropsSpec:
    site_id: str
    date_range: str | tuple[str, str]
    time_dimension: str | None = None

    @property
    def dimensions(self) -> list[str]:
        return [self.time_dimension] if self.time_dimension else []


@dataclass
class DropsReport:
    results: list[dict[str, Any]]
    meta: dict[str, Any]
    query: dict[str, Any]

    def csv(self, spec: DropsSpec) -> Iterator[str]:
        """The results as CSV lines: [time,] reason, count (an empty cell for null)."""
        keys = ("time", "reason") if spec.time_dimension else ("reason",)
        rows = [{"dimensions": [row[key] for key in keys], "metrics": [row["count"]]}
                for row in self.results]
        return csv_lines(keys, ("count",), rows)


def parse_drops_query(body: Any) -> DropsSpec:
    if not isinstance(body, dict):
        raise InvalidField("the body must be a JSON object", "body")
    for key in body:
        if key not in _FIELDS:
            raise InvalidField(f"unknown field (accepted: {', '.join(_FIELDS)})", key)
    return DropsSpec(parse_site_id(body.get("site_id")),
                     parse_date_range(body.get("date_range")),
                     _time_dimension(body.get("dimensions", [])))


def _time_dimension(value: Any) -> str | None:
    if not isinstance(value, list):
        raise InvalidField("must be a list", "dimensions")
    if len(value) > 1:
        raise InvalidField("at most one dimension, a time bucket", "dimensions")
    if value and value[0] not in TIME_DIMENSIONS:
        raise InvalidField(f"unknown dimension {value[0]!r} (known: "
                           f"{', '.join(TIME_DIMENSIONS)})", "dimensions[0]")
    return value[0] if value else None


def run_drops_report(store: Store, spec: DropsSpec, context: SiteContext, now: datetime,
                     releaser: Releaser | None = None) -> DropsReport:
    """Counts per reason (and bucket) of ``spec``; released through ``releaser`` (a share
    token's): null below its k, noised above."""
    timezone = context.timezone
    period = resolve(spec.date_range, timezone, now, _first_day(store, spec, timezone))
    first_hour, after_last = _hour_ceiling(period.start), _hour_ceiling(period.end)
    # Hour buckets are those of the hours read; days, weeks and months the period's.
    bucketed = dataclasses.replace(period, start=first_hour, end=after_last) \
        if spec.time_dimension == "time:hour" else period
    labels = bucket_labels(spec.time_dimension, bucketed, timezone) \
        if spec.time_dimension else [""]
    if len(labels) > MAX_BUCKETS:
        raise InvalidField(f"more than {MAX_BUCKETS} {spec.time_dimension} buckets in the "
                           "range: choose a longer bucket", "dimensions[0]")
    counted = _counts(store, spec, context, first_hour, after_last, period.first_day)
    cells = [((label, reason), {"count": float(counted.get((label, reason), 0))})
             for label in labels for reason in REASONS]
    meta: dict[str, Any] = {"timezone": timezone, "reasons": list(REASONS),
                            "utc_hours": [first_hour.isoformat(), after_last.isoformat()]}
    shown: dict[tuple[str, str], int | None] = {key: int(parts["count"]) for key, parts in cells}
    if releaser is not None:
        published = releaser.publish(
            {"report": "drops", "site": context.site, "timezone": timezone,
             "hours": meta["utc_hours"], "dimension": spec.time_dimension},
            [Table("drops", cells, ("count",), 1, row_bounds={"count": 1}, threshold="count")])
        for key, _ in cells:
            noisy = published.row("drops", key)
            shown[key] = None if noisy is None else int(noisy["count"])
        meta["privacy"] = releaser.meta(published)
        if published.suppressed:
            meta["suppressed"] = (f"counts below {releaser.access.k} are shown as null: a "
                                  "public share link never shows counts that small")
    results = []
    for (label, reason), count in shown.items():
        row: dict[str, Any] = {"time": label} if spec.time_dimension else {}
        results.append({**row, "reason": reason, "count": count})
    query = {"site_id": spec.site_id,
             "date_range": [period.start.isoformat(), period.end.isoformat()],
             "dimensions": spec.dimensions}
    return DropsReport(results, meta, query)


def _hour_ceiling(moment: datetime) -> datetime:
    """The first UTC hour that begins at or after ``moment``."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour if hour == moment else hour + timedelta(hours=1)


def _counts(store: Store, spec: DropsSpec, context: SiteContext, first_hour: datetime,
            after_last: datetime, first_day: date) -> dict[tuple[str, str], int]:
    """Summed counts by (bucket label, reason); the label is '' without a time dimension."""
    params = Parameters()
    bucket = "''"
    if spec.time_dimension:
        bucket = time_bucket_sql(spec.time_dimension, "hour", params, context.timezone,
                                 first_day)
    rows = store.rows(
        f"SELECT {bucket} AS bucket, reason, sum(count) FROM drops "
        "WHERE site = {site:String} AND hour >= toDateTime({first:UInt32}, 'UTC') "
        "AND hour < toDateTime({after:UInt32}, 'UTC') GROUP BY bucket, reason",
        {**params.values, "site": context.site, "first": int(first_hour.timestamp()),
         "after": int(after_last.timestamp())})
    return {(value.isoformat() if isinstance(value, date) else str(value), reason): int(count)
            for value, reason, count in rows}


def _first_day(store: Store, spec: DropsSpec, timezone: str) -> date | None:
    """For ``all``: the first local day with a count."""
    if spec.date_range != "all":
        return None
    found = store.rows("SELECT min(toDate(hour, {tz:String})), count() FROM drops "
                       "WHERE site = {site:String}", {"tz": timezone, "site": spec.site_id})
    return found[0][0] if found and found[0][1] else None
