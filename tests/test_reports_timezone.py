"""Date bucketing in the site timezone, across a daylight-saving change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from collector.reports.builder import SiteContext
from collector.reports.dates import bucket_labels, days_range
from collector.reports.query import run_report
from collector.reports.request import parse_query
from collector.reports.sampling import Sampler
from collector.storage import Store
from tests.reporting_data import make_event, store_events

BERLIN = "Europe/Berlin"
SITE = "dst.example"


def latest_dst_change() -> date:
    """The most recent day (at least two days ago) on which Berlin's UTC offset changed."""
    zone = ZoneInfo(BERLIN)
    day = datetime.now(UTC).date() - timedelta(days=2)
    while True:
        before = datetime.combine(day - timedelta(days=1), time(12), zone).utcoffset()
        after = datetime.combine(day, time(12), zone).utcoffset()
        if before != after:
            return day
        day -= timedelta(days=1)


CHANGE = latest_dst_change()


def local_ms(day: date, clock: str) -> int:
    moment = datetime.combine(day, time.fromisoformat(clock), ZoneInfo(BERLIN))
    return int(moment.timestamp() * 1000)


@pytest.fixture(scope="module", autouse=True)
def traffic(store: Store) -> Iterator[None]:
    # Half an hour either side of local midnight, on the eve, the day and the morrow.
    moments = [(CHANGE - timedelta(days=1), "23:30"), (CHANGE, "00:30"), (CHANGE, "23:30"),
               (CHANGE + timedelta(days=1), "00:30")]
    store_events(store, [make_event(local_ms(day, clock), index, site=SITE)
                         for index, (day, clock) in enumerate(moments)])
    yield


def daily(store: Store, zone: str, dimension: str = "time:day",
          force_raw: bool = False) -> list[Any]:
    spec = parse_query({"site_id": SITE, "metrics": ["pageviews"], "dimensions": [dimension],
                        "date_range": [(CHANGE - timedelta(days=1)).isoformat(),
                                       (CHANGE + timedelta(days=1)).isoformat()]})
    now = datetime.now(UTC)
    report = run_report(store, spec, SiteContext(SITE, zone), now, force_raw=force_raw)
    return [(*row["dimensions"], *row["metrics"]) for row in report.results]


@pytest.mark.parametrize("force_raw", [False, True])
def test_days_are_local_days_across_the_change(store: Store, force_raw: bool) -> None:
    assert daily(store, BERLIN, force_raw=force_raw) == [
        ((CHANGE - timedelta(days=1)).isoformat(), 1), (CHANGE.isoformat(), 2),
        ((CHANGE + timedelta(days=1)).isoformat(), 1)]


def test_the_same_events_in_utc_fall_on_other_days(store: Store) -> None:
    assert [count for _, count in daily(store, "UTC")] != [1, 2, 1]


@pytest.mark.parametrize("force_raw", [False, True])
def test_hours_of_the_change_day(store: Store, force_raw: bool) -> None:
    hours = daily(store, BERLIN, "time:hour", force_raw)
    assert [label for label, _ in hours] == [
        f"{(CHANGE - timedelta(days=1)).isoformat()} 23:00:00", f"{CHANGE.isoformat()} 00:00:00",
        f"{CHANGE.isoformat()} 23:00:00", f"{(CHANGE + timedelta(days=1)).isoformat()} 00:00:00"]


def test_the_change_day_has_23_or_25_hours() -> None:
    period = days_range(CHANGE, CHANGE, BERLIN)
    assert (period.end - period.start).total_seconds() / 3600 in (23, 25)
    assert len(bucket_labels("time:hour", period, BERLIN)) in (23, 24)


def test_local_days_mix_daily_rollups_and_edge_hours_like_raw(store: Store,
                                                               rollups_in_use: Sampler) -> None:
    now = datetime.now(UTC)
    context = SiteContext(SITE, BERLIN)
    range_ = [(CHANGE - timedelta(days=1)).isoformat(), CHANGE.isoformat()]
    for dimension in ("visit:country", "event:page"):
        spec = parse_query({"site_id": SITE, "metrics": ["visitors", "pageviews"],
                            "dimensions": [dimension], "date_range": range_})
        planned = run_report(store, spec, context, now, sampler=rollups_in_use)
        raw = run_report(store, spec, context, now, force_raw=True, sampler=rollups_in_use)
        exact = run_report(store, spec, context, now, allow_sampling=False)
        # One whole UTC day from the daily table, the local hours around it from raw rows.
        assert planned.meta["table"].endswith("_rollup_daily")
        assert planned.results == raw.results
        assert [row["metrics"][1] for row in planned.results] \
            == [row["metrics"][1] for row in exact.results]
    assert exact.meta["source"] == "raw" and "visitors_sample_percent" not in exact.meta


