"""Reports against the real engine: every metric and dimension on hand-built visits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector.errors import InvalidField
from collector.reports.builder import SiteContext
from collector.reports.dimensions import DIMENSIONS
from collector.reports.goals import Goal
from collector.reports.query import Report, run_report
from collector.reports.request import parse_query
from collector.reports.sampling import Sampler
from collector.storage import Store
from tests.reporting_data import SITE, at, day, make_event, sample_site_events, store_events

NOW = datetime.combine(day(5), datetime.min.time(), UTC) + timedelta(hours=12)
GOALS = (Goal("Signup", "event", "Signup"), Goal("Visit /blog/*", "page", "/blog/*"))
TWO_DAYS = [day(0).isoformat(), day(1).isoformat()]


@pytest.fixture(scope="module", autouse=True)
def traffic(store: Store) -> Iterator[None]:
    store_events(store, sample_site_events())
    yield


def report(store: Store, k: int = 1, force_raw: bool = False, sampler: Sampler | None = None,
           **body: Any) -> Report:
    body.setdefault("site_id", SITE)
    body.setdefault("date_range", TWO_DAYS)
    context = SiteContext(SITE, "UTC", GOALS, k)
    return run_report(store, parse_query(body), context, NOW, force_raw=force_raw,
                      sampler=sampler)


def rows(store: Store, **body: Any) -> list[tuple[Any, ...]]:
    return [(*row["dimensions"], *row["metrics"]) for row in report(store, **body).results]


ALL_METRICS = ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate",
               "visit_duration", "events"]


def test_top_stats_cover_every_visit_metric(store: Store) -> None:
    result = report(store, metrics=ALL_METRICS)
    assert result.results == [{"dimensions": [], "metrics": [6, 7, 9, 1.29, 57, 154, 12]}]
    # Few visits: exact visitors, which only the raw tables have.
    assert result.meta["source"] == "raw" and "visitors_sample_percent" not in result.meta


# Every dimension the rollups can answer, from the schema declaration: a dimension
# declared there is tested here without a line of its own.
ROLLUP_DIMENSIONS = [name for name, spec in DIMENSIONS.items()
                     if spec.in_rollup and spec.level != "time"]
ROLLUP_QUERIES = [
    {"metrics": ALL_METRICS, "include": {"comparison": "previous_period"}},
    {"metrics": ["visitors", "visits", "pageviews"], "dimensions": ["time:day"]},
    {"metrics": ["visits", "visitors"], "dimensions": ["time:hour"],
     "date_range": [day(0).isoformat(), day(0).isoformat()]},
    {"metrics": ["visitors", "visits", "pageviews", "events"], "dimensions": ["event:page"]},
    *({"metrics": ["visitors", "visits", "percentage"], "dimensions": [name]}
      for name in ROLLUP_DIMENSIONS if name.startswith("visit:")),
    *({"metrics": ["visitors", "visits", "events"], "dimensions": [name]}
      for name in ROLLUP_DIMENSIONS if name.startswith("event:")),
]


@pytest.mark.parametrize("body", ROLLUP_QUERIES,
                         ids=lambda body: ",".join(body.get("dimensions", ["top stats"])))
def test_rollups_answer_like_raw_at_the_same_visitor_sample(store: Store, body: dict[str, Any],
                                                            rollups_in_use: Sampler) -> None:
    planned = report(store, sampler=rollups_in_use, **body)
    raw = report(store, force_raw=True, sampler=rollups_in_use, **body)
    assert planned.meta["source"] == "rollup" and raw.meta["source"] == "raw"
    assert planned.meta["visitors_sample_percent"] == raw.meta["visitors_sample_percent"] == 6.25
    assert planned.results == raw.results


def test_the_visitor_sample_scales_up(store: Store, rollups_in_use: Sampler) -> None:
    # Every test visitor's hash (1..6) lies in the 1/16 sample: each stands for 16.
    result = report(store, sampler=rollups_in_use, metrics=["visitors", "visits"])
    assert result.results == [{"dimensions": [], "metrics": [6 * 16, 7]}]


def test_breakdown_by_source_with_blank_label(store: Store) -> None:
    assert rows(store, metrics=["visitors", "visits", "bounce_rate", "percentage"],
                dimensions=["visit:source"]) == [
        ("Direct / None", 2, 3, 67, 33.3), ("Google", 2, 2, 0, 33.3),
        ("X", 2, 2, 100, 33.3)]


def test_pages_count_events_per_path(store: Store) -> None:
    assert rows(store, metrics=["visitors", "pageviews", "events"],
                dimensions=["event:page"]) == [
        ("/", 3, 4, 5), ("/blog/a", 2, 2, 2), ("/pricing", 2, 2, 4), ("/blog/b", 1, 1, 1)]


def test_entry_and_exit_pages(store: Store) -> None:
    assert rows(store, metrics=["visits"], dimensions=["visit:entry_page"]) == [
        ("/", 4), ("/blog/a", 2), ("/pricing", 1)]
    assert rows(store, metrics=["visitors", "visits"], dimensions=["visit:exit_page"]) == [
        ("/", 2, 2), ("/blog/a", 2, 2), ("/pricing", 2, 2), ("/blog/b", 1, 1)]


@pytest.mark.parametrize("name, expected", [
    ("visit:referrer", {"Direct / None": 2, "google.com": 2, "t.co/x": 2}),
    ("visit:channel", {"Direct": 2, "Organic Search": 2, "Organic Social": 2}),
    ("visit:utm_campaign", {"(not set)": 4, "spring": 2}),
    ("visit:utm_source", {"(not set)": 6}),
    ("visit:utm_medium", {"(not set)": 6}),
    ("visit:utm_term", {"(not set)": 6}),
    ("visit:utm_content", {"(not set)": 6}),
    ("visit:browser", {"Chrome": 3, "Firefox": 2, "Safari": 1}),
    ("visit:browser_version", {"124": 3, "125": 2, "17": 1}),
    ("visit:os", {"Windows": 2, "Linux": 2, "Mac OS": 1, "Android": 1}),
    ("visit:os_version", {"10": 2, "(not set)": 2, "14": 2}),
    ("visit:device", {"desktop": 3, "mobile": 3}),
    ("visit:country", {"DE": 3, "FR": 2, "US": 1}),
    ("visit:region", {"DE-BE": 3, "FR-IDF": 2, "US-CA": 1}),
    ("visit:city", {"Berlin": 3, "Paris": 2, "San Francisco": 1}),
    ("visit:language", {"en": 6}),
    ("visit:isp", {"Example ISP": 6}),
    ("event:name", {"pageview": 6, "Signup": 2, "Download": 1}),
    ("event:hostname", {"example.com": 6}),
    ("event:props:plan", {"(none)": 6, "pro": 1, "free": 1}),
])
def test_every_dimension(store: Store, name: str, expected: dict[str, int]) -> None:
    for force_raw in (False, True):
        found = report(store, metrics=["visitors"], dimensions=[name], force_raw=force_raw)
        assert {row["dimensions"][0]: row["metrics"][0] for row in found.results} == expected


def test_timeseries_by_day_and_hour(store: Store) -> None:
    assert rows(store, metrics=["visitors", "pageviews"], dimensions=["time:day"]) == [
        (day(0).isoformat(), 4, 7), (day(1).isoformat(), 2, 2)]
    hours = rows(store, metrics=["visits"], dimensions=["time:hour"],
                 date_range=[day(0).isoformat(), day(0).isoformat()])
    assert hours[0] == (f"{day(0).isoformat()} 10:00:00", 1) and len(hours) == 5


def test_week_and_month_buckets(store: Store) -> None:
    weeks = rows(store, metrics=["visitors"], dimensions=["time:week"])
    assert sum(row[1] for row in weeks) == 6
    # A week begun before the range is labelled by the range's first day (Plausible's rule).
    assert all(datetime.fromisoformat(row[0]).weekday() == 0 or row[0] == TWO_DAYS[0]
               for row in weeks)
    months = rows(store, metrics=["visitors"], dimensions=["time:month"])
    assert all(row[0].endswith("-01") for row in months) and sum(r[1] for r in months) == 6


def test_filters(store: Store) -> None:
    def visitors(*filters: Any, metric: str = "visitors") -> Any:
        return report(store, metrics=[metric], filters=list(filters)).results[0]["metrics"][0]

    assert visitors(["is", "visit:source", ["Google"]]) == 2
    assert visitors(["is", "visit:source", ["Google"]], metric="pageviews") == 3
    assert visitors(["is", "event:page", ["/pricing"]]) == 2
    # The bounce rate of the visits entering on the page (Plausible's): visitor 4's only.
    assert visitors(["is", "event:page", ["/pricing"]], metric="bounce_rate") == 100
    assert visitors(["contains", "event:page", ["blog"]]) == 3
    assert visitors(["matches", "visit:browser", ["^Fire"]]) == 2
    assert visitors(["is_not", "visit:country", ["DE"]]) == 3
    assert visitors(["contains_not", "event:page", ["blog"]]) == 4
    assert visitors(["or", [["is", "visit:country", ["FR"]],
                            ["is", "visit:country", ["US"]]]]) == 3
    assert visitors(["and", [["is", "visit:source", ["Google"]],
                             ["is", "event:name", ["Signup"]]]]) == 2
    assert visitors(["not", ["is", "visit:source", ["Direct / None"]]]) == 4
    assert visitors(["is", "event:props:plan", ["pro"]]) == 1
    assert visitors(["is", "visit:exit_page", ["/blog/b"]]) == 1


def test_event_filter_on_a_visit_breakdown_counts_visits_that_matched(store: Store) -> None:
    assert rows(store, metrics=["visits"], dimensions=["visit:source"],
                filters=[["is", "event:name", ["Signup"]]]) == [("Google", 2)]


def test_goals_and_conversion_rate(store: Store) -> None:
    assert rows(store, metrics=["visitors", "events", "conversion_rate"],
                dimensions=["event:goal"]) == [
        ("Visit /blog/*", 3, 3, 50.0), ("Signup", 2, 2, 33.3)]
    assert rows(store, metrics=["visitors", "conversion_rate"],
                filters=[["is", "event:goal", ["Signup"]]]) == [(2, 33.3)]


def test_comparison_with_previous_period(store: Store) -> None:
    found = report(store, metrics=["visitors", "bounce_rate"],
                   date_range=[day(1).isoformat(), day(1).isoformat()],
                   include={"comparison": "previous_period"})
    assert found.results[0]["metrics"] == [2, 50]
    assert found.results[0]["comparison"] == {"dimensions": [], "metrics": [4, 60],
                                              "change": [-50, -10.0]}
    assert found.meta["comparison_date_range"] == [day(0).isoformat()] * 2


def test_comparison_pairs_time_buckets_by_position(store: Store) -> None:
    found = report(store, metrics=["visitors"], dimensions=["time:day"],
                   date_range=[day(1).isoformat(), day(1).isoformat()],
                   include={"comparison": "previous_period", "time_labels": True})
    assert found.results == [{"dimensions": [day(1).isoformat()], "metrics": [2],
                              "comparison": {"dimensions": [day(0).isoformat()],
                                             "metrics": [4], "change": [-50]}}]
    assert found.meta["time_labels"] == [day(1).isoformat()]


def test_order_by_and_pagination(store: Store) -> None:
    body = {"metrics": ["visitors", "events"], "dimensions": ["event:page"],
            "order_by": [["events", "asc"]], "pagination": {"limit": 2, "offset": 1}}
    assert rows(store, **body) == [("/blog/a", 2, 2), ("/pricing", 2, 4)]


def test_k_threshold_folds_rare_rows_into_other(store: Store) -> None:
    body = {"metrics": ["visitors", "pageviews"], "dimensions": ["event:page"]}
    assert rows(store, k=2, **body) == [("/", 3, 4), ("/blog/a", 2, 2), ("/pricing", 2, 2),
                                        ("(other)", 1, 1)]
    assert rows(store, k=3, **body) == [("(other)", 5, 5), ("/", 3, 4)]
    for force_raw in (False, True):
        assert report(store, k=3, force_raw=force_raw, **body).results == \
            report(store, k=3, **body).results


def test_k_threshold_keeps_time_buckets(store: Store) -> None:
    assert rows(store, k=3, metrics=["visitors"], dimensions=["time:day", "visit:country"]) \
        == [(day(0).isoformat(), "(other)", 4), (day(1).isoformat(), "(other)", 2)]


def test_sessions_crossing_into_range_via_event_filters(store: Store) -> None:
    assert rows(store, metrics=["visitors"], date_range="all") == [(6,)]


@pytest.mark.parametrize("body, field", [
    ({"metrics": ["visitors", "nope"]}, "metrics[1]"),
    ({"metrics": ["visitors"], "dimensions": ["visit:password"]}, "dimensions[0]"),
    ({"metrics": ["visitors"], "filters": [["is", "visit:source"]]}, "filters[0]"),
    ({"metrics": ["visitors"], "filters": [["equals", "visit:source", ["x"]]]},
     "filters[0][0]"),
    ({"metrics": ["visitors"], "filters": [["is", "visit:source); DROP TABLE events", ["x"]]]},
     "filters[0][1]"),
    ({"metrics": ["visitors"], "filters": [["or", [["is", "visit:os", [1]]]]]},
     "filters[0][1][0][2][0]"),
    ({"metrics": ["visitors"], "filters": [["matches", "event:page", ["(unclosed"]]]},
     "filters[0][2][0]"),
    ({"metrics": ["views_per_visit"], "dimensions": ["event:page"]}, "metrics[0]"),
    ({"metrics": ["conversion_rate"]}, "metrics[0]"),
    ({"metrics": ["visitors"], "filters": [["is", "event:goal", ["Nope"]]]},
     "filters[0][2][0]"),
    ({"metrics": ["visitors"], "order_by": [["pageviews", "desc"]]}, "order_by[0][0]"),
    ({"metrics": ["visitors"], "date_range": "3d"}, "date_range"),
    ({"metrics": ["visitors"], "date_range": ["2024-01-02", "yesterday"]}, "date_range[1]"),
    ({"metrics": ["visitors"], "pagination": {"limit": 0}}, "pagination.limit"),
    ({"metrics": ["visitors"], "include": {"comparison": "year_over_year"}},
     "include.comparison"),
    ({"metrics": ["visitors"], "include": {"sample": "yes"}}, "include.sample"),
])
def test_invalid_requests_name_the_field(store: Store, body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        report(store, **body)
    assert caught.value.field == field


INJECTIONS = ["' OR 1=1 --", "x') OR ('1'='1", "\\'; DROP TABLE events; --", "{p0:String}",
              "%' UNION SELECT 1 --", "DE\0"]


@pytest.mark.parametrize("attempt", INJECTIONS)
@pytest.mark.parametrize("operator", ["is", "contains", "matches", "is_not"])
# Not visit:country: is and is_not take only 2-letter codes there (Plausible's rule).
@pytest.mark.parametrize("name", ["visit:city", "event:page", "event:props:plan",
                                  "event:props:' OR 1=1 --"])
def test_injection_attempts_are_only_values(store: Store, attempt: str, operator: str,
                                            name: str) -> None:
    if operator == "matches":
        attempt = "^" + attempt.replace("(", r"\(").replace(")", r"\)").replace("\\'", "'")
    found = report(store, metrics=["visitors"], filters=[[operator, name, [attempt]]])
    # Nothing matches an attempt taken literally, so only is_not keeps everyone.
    assert found.results[0]["metrics"][0] == (6 if operator == "is_not" else 0)
    assert store.rows("SELECT count() FROM events")[0][0] == len(sample_site_events())


def test_exit_pages_on_large_ranges_read_the_visitor_sample_of_collapsed_visits(
        store: Store, rollups_in_use: Sampler) -> None:
    body = {"site_id": SITE, "date_range": TWO_DAYS, "metrics": ["visitors", "visits"],
            "dimensions": ["visit:exit_page"]}
    context = SiteContext(SITE, "UTC", GOALS)
    sampled = run_report(store, parse_query(body), context, NOW, sampler=rollups_in_use)
    exact = run_report(store, parse_query(body), context, NOW, allow_sampling=False)
    assert sampled.meta["sample_percent"] == 6.25 and sampled.meta["table"] == "visits"
    assert "sample_percent" not in exact.meta
    assert [(*row["dimensions"], *row["metrics"]) for row in exact.results] == [
        ("/", 2, 2), ("/blog/a", 2, 2), ("/pricing", 2, 2), ("/blog/b", 1, 1)]
    # Every test visitor lies in the 1/16 sample, so each of its visits stands for 16.
    assert sampled.results == [
        {"dimensions": row["dimensions"], "metrics": [16 * value for value in row["metrics"]]}
        for row in exact.results]


@pytest.mark.parametrize("body", [
    {"metrics": ["visitors", "pageviews"], "dimensions": ["event:page"],
     "filters": [["is", "visit:source", ["Direct / None"]]]},
    {"metrics": ["visitors", "visits", "bounce_rate"], "dimensions": ["visit:browser"],
     "filters": [["contains", "event:page", ["/blog"]]]},
    {"metrics": ALL_METRICS, "filters": [["is", "visit:country", ["DE"]]]},
    # The base of percentages reads the same sample (it was once exact: 1600%).
    {"metrics": ["visitors", "percentage"], "dimensions": ["visit:os"],
     "filters": [["is", "visit:device", ["desktop"]]]},
])
def test_include_sample_reads_every_metric_from_the_visitor_sample_filters_included(
        store: Store, rollups_in_use: Sampler, body: dict[str, Any]) -> None:
    body = {"site_id": SITE, "date_range": TWO_DAYS, **body}
    context = SiteContext(SITE, "UTC", GOALS)
    sampled = run_report(store, parse_query({**body, "include": {"sample": True}}), context,
                         NOW, sampler=rollups_in_use)
    unsampled = run_report(store, parse_query(body), context, NOW, sampler=rollups_in_use)
    exact = run_report(store, parse_query(body), context, NOW, allow_sampling=False)
    assert sampled.meta["sample_percent"] == 6.25 and sampled.meta["source"] == "raw"
    assert "sample_percent" not in unsampled.meta  # without it, only distinct counts sample
    assert exact.results, "the filter must match something for the check to mean anything"
    # Every test visitor lies in the 1/16 sample: counts scale by 16, ratios stay.
    ratios = {"views_per_visit", "bounce_rate", "visit_duration", "percentage"}
    assert sampled.results == [
        {"dimensions": row["dimensions"],
         "metrics": [value if metric in ratios else 16 * value
                     for metric, value in zip(body["metrics"], row["metrics"])]}
        for row in exact.results]


def test_an_insert_within_the_last_second_of_the_range_is_counted(store: Store) -> None:
    # One part whose rows all lie in 23:59:59.xxx: ClickHouse pruned it against a DateTime
    # bound of midnight (a writer flush at that moment vanished from the day's report).
    site = "last-second.example"
    store_events(store, [make_event(at("23:59:59") + 400, 1, site=site),
                         make_event(at("23:59:59") + 900, 2, "/pricing", site=site)])
    body = {"site_id": site, "date_range": [day(0).isoformat(), day(0).isoformat()]}
    for dimensions in ([], ["event:page"], ["time:hour"]):
        result = run_report(store, parse_query({**body, "metrics": ["visitors", "visits",
                                                                    "pageviews"],
                                                "dimensions": dimensions}),
                            SiteContext(site, "UTC", GOALS), NOW, allow_sampling=False)
        assert sum(row["metrics"][2] for row in result.results) == 2, dimensions
