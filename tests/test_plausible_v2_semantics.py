"""Stats API v2 semantics as Plausible's (issue #15): what each figure means, on our own cases.

Derived from Plausible's query engine and its controller tests, with traffic of our own
written through the ingest path: the default order, rounding, the bounce rate and visit
duration of a page (entry-page semantics), has_done / has_not_done, group conversion
rates, comparisons in every mode, and share links keeping their thresholds and bounds.

Day 0 (UTC), every visitor on desktop unless said:
- 1: /pricing, bounce.                 - 2: /pricing, /signup, Signup (180 s).
- 3: /, /pricing (240 s).              - 4: /, bounce, mobile.
- 5: /blog, Signup (60 s), mobile.     - 8: /docs four times (180 s).
Day 1: 6: /, bounce; 7: /pricing, Signup (30 s).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from collector.errors import InvalidField
from collector.reports.budget import PrivacyBudget
from collector.reports.builder import SiteContext, build, plan
from collector.reports.contribution import SHARE_BOUNDS
from collector.reports.dates import resolve
from collector.reports.goals import Goal
from collector.reports.metrics import change, half_away, metric_value
from collector.reports.query import Report, compared_period, run_report
from collector.reports.release import ReleaseCache, Releaser, ShareAccess
from collector.reports.request import parse_query
from collector.reports.secondary import entry_spec, group_spec
from collector.storage import Store
from tests.reporting_data import SITE, at, day, make_event, store_events

NOW = datetime.combine(day(5), datetime.min.time(), UTC) + timedelta(hours=12)
GOALS = (Goal("Signup", "event", "Signup"),)
DAY0 = [day(0).isoformat()] * 2
DAY1 = [day(1).isoformat()] * 2
MOBILE = {"device": "mobile", "screen": "mobile"}
SIGNUP = ["is", "event:goal", ["Signup"]]
NOISELESS = 1e6  # an epsilon whose noise rounds away


@pytest.fixture(scope="module", autouse=True)
def traffic(store: Store) -> Iterator[None]:
    events = [
        make_event(at("10:00"), 1, "/pricing"),
        make_event(at("11:00"), 2, "/pricing"),
        make_event(at("11:02"), 2, "/signup"),
        make_event(at("11:03"), 2, "/signup", name="Signup"),
        make_event(at("12:00"), 3, "/"),
        make_event(at("12:04"), 3, "/pricing"),
        make_event(at("13:00"), 4, "/", **MOBILE),
        make_event(at("14:00"), 5, "/blog", **MOBILE),
        make_event(at("14:01"), 5, "/blog", name="Signup", **MOBILE),
        *(make_event(at(f"15:0{minute}"), 8, "/docs") for minute in range(4)),
        make_event(at("09:00", 1), 6, "/"),
        make_event(at("10:00", 1), 7, "/pricing"),
        make_event(at("10:00:30", 1), 7, "/pricing", name="Signup"),
    ]
    store_events(store, events)
    yield


def report(store: Store, releaser: Releaser | None = None, **body: Any) -> Report:
    body.setdefault("site_id", SITE)
    body.setdefault("date_range", DAY0)
    return run_report(store, parse_query(body), SiteContext(SITE, "UTC", GOALS), NOW,
                      releaser=releaser)


def rows(store: Store, **body: Any) -> list[list[Any]]:
    return [[*row["dimensions"], *row["metrics"]] for row in report(store, **body).results]


def metrics(store: Store, **body: Any) -> list[Any]:
    return list(report(store, **body).results[0]["metrics"])


def refused(store: Store, **body: Any) -> str | None:
    with pytest.raises(InvalidField) as error:
        report(store, **body)
    return error.value.field


# The default order and rounding


def test_rows_are_ordered_by_the_first_metric_then_by_their_values(store: Store) -> None:
    # /docs has the most pageviews (one visitor, four views), /pricing the most visitors.
    assert rows(store, metrics=["pageviews", "visitors"], dimensions=["event:page"]) == [
        ["/docs", 4, 1], ["/pricing", 3, 3], ["/", 2, 2], ["/blog", 1, 1], ["/signup", 1, 1]]
    assert [row[0] for row in rows(store, metrics=["visitors", "pageviews"],
                                   dimensions=["event:page"])] == \
        ["/pricing", "/", "/blog", "/docs", "/signup"]


def test_a_time_dimension_orders_first_even_before_the_first_metric(store: Store) -> None:
    assert rows(store, metrics=["visitors"], dimensions=["time:day"],
                date_range=[day(0).isoformat(), day(1).isoformat()]) == [
        [day(0).isoformat(), 6], [day(1).isoformat(), 2]]


def test_change_rounds_half_away_from_zero_as_plausible() -> None:
    assert change("visitors", 3, 8) == -63  # -62.5: Python's round would say -62
    assert change("visitors", 0, 0) == 0
    assert change("visitors", 5, 0) == 100
    assert change("percentage", 50.0, 12.5) == 300  # percent, not points, as Plausible's
    assert change("bounce_rate", 40, 60) == -20
    assert change("bounce_rate", 40, 0) is None  # no change from a zero rate
    assert change("conversion_rate", 40.0, 25.0) == 15.0
    assert change("visit_duration", None, 30) is None
    assert half_away(2.5) == 3 and half_away(-2.5) == -3 and half_away(0.25, 1) == 0.3


def test_rates_round_as_plausible_rounds_them() -> None:
    parts = {"visitors": 1.0, "visits": 8.0, "bounces": 1.0, "pageviews": 9.0,
             "duration": 20.0}
    assert metric_value("bounce_rate", parts, 0) == 12  # 12.5: a float tie goes to even
    assert metric_value("conversion_rate", parts, 8) == 12.5
    assert metric_value("conversion_rate", parts, 3) == 33.3  # one decimal
    assert metric_value("percentage", parts, 6) == 16.7
    assert metric_value("views_per_visit", parts, 0) == 1.12
    assert metric_value("visit_duration", parts, 0) == 2


# Entry-page semantics


def test_bounce_rate_under_a_page_filter_is_that_of_visits_entering_there(store: Store) -> None:
    # Visits 1, 2 and 3 saw /pricing; 1 and 2 entered there and 1 bounced. The duration is
    # that of every visit that saw the page, as Plausible's.
    assert metrics(store, metrics=["visitors", "bounce_rate", "visit_duration"],
                   filters=[["is", "event:page", ["/pricing"]]]) == [3, 50, 140]
    assert metrics(store, metrics=["bounce_rate"],
                   filters=[["contains", "event:page", ["pric", "sign"]]]) == [50]


def test_a_nested_page_filter_keeps_every_visit_in_the_bounce_rate(store: Store) -> None:
    # Only a top-level page filter names the entry page (Plausible's rule).
    assert metrics(store, metrics=["bounce_rate"], filters=[
        ["or", [["is", "event:page", ["/pricing"]], ["is", "event:page", ["/nowhere"]]]]]) == [33]


def test_page_rows_take_bounce_rate_and_duration_from_visits_entering_on_them(
        store: Store) -> None:
    assert rows(store, metrics=["visitors", "bounce_rate", "visit_duration"],
                dimensions=["event:page"]) == [
        ["/pricing", 3, 50, 90], ["/", 2, 50, 120], ["/blog", 1, 0, 60], ["/docs", 1, 0, 180],
        ["/signup", 1, 0, 0]]  # nobody entered on /signup


def test_page_rows_ordered_by_an_entry_metric_are_paged_after_ordering(store: Store) -> None:
    assert rows(store, metrics=["bounce_rate", "visitors"], dimensions=["event:page"],
                order_by=[["bounce_rate", "desc"], ["visitors", "asc"]],
                pagination={"limit": 2, "offset": 1}) == [["/pricing", 50, 3], ["/blog", 0, 1]]
    assert rows(store, metrics=["bounce_rate"], dimensions=["event:page"],
                pagination={"limit": 2}) == [["/", 50], ["/pricing", 50]]


def test_page_rows_filtered_by_page_read_the_filter_as_the_entry_page(store: Store) -> None:
    assert rows(store, metrics=["visitors", "bounce_rate"], dimensions=["event:page"],
                filters=[["is", "event:page", ["/pricing", "/signup"]]]) == [
        ["/pricing", 3, 50], ["/signup", 1, 0]]


def test_page_rows_compare_their_entry_metrics_too(store: Store) -> None:
    found = report(store, metrics=["visitors", "bounce_rate"], dimensions=["event:page"],
                   date_range=DAY1, filters=[["is", "event:page", ["/pricing"]]],
                   include={"comparisons": {"mode": "previous_period"}}).results
    assert found == [{"dimensions": ["/pricing"], "metrics": [1, 0],
                      "comparison": {"dimensions": ["/pricing"], "metrics": [3, 50],
                                     "change": [-67, -50]}}]


# Behavioral filters


def test_has_done_keeps_the_visits_with_a_matching_event(store: Store) -> None:
    assert metrics(store, metrics=["visitors", "visits", "pageviews", "bounce_rate"],
                   filters=[["has_done", SIGNUP]]) == [2, 2, 3, 0]
    assert metrics(store, metrics=["visitors", "bounce_rate"],
                   filters=[["has_not_done", SIGNUP]]) == [4, 50]
    # An event filter at event level counts the event; has_done counts the visit's pages.
    assert rows(store, metrics=["pageviews"], dimensions=["event:page"],
                filters=[["has_done", ["is", "event:page", ["/signup"]]]]) == [
        ["/pricing", 1], ["/signup", 1]]


def test_has_done_combines_with_other_filters_and_dimensions(store: Store) -> None:
    by_device = rows(store, metrics=["visitors"], dimensions=["visit:device"],
                     filters=[["has_done", SIGNUP], ["is_not", "event:page", ["/blog"]]])
    assert [row[1:] for row in by_device] == [[1]]
    assert metrics(store, metrics=["visitors"], filters=[
        ["or", [["has_done", SIGNUP], ["is", "event:page", ["/docs"]]]]]) == [3]
    assert metrics(store, metrics=["visitors"], filters=[
        ["not", ["has_not_done", ["contains", "event:page", ["blog"]]]]]) == [1]


@pytest.mark.parametrize("filters, field", [
    ([["has_done", ["is", "visit:source", ["Google"]]]], "filters[0][1]"),
    ([["has_done", ["has_not_done", SIGNUP]]], "filters[0][1]"),
    ([["has_done", ["and", [SIGNUP, ["is", "visit:device", ["mobile"]]]]]], "filters[0][1][1][1]"),
    ([["has_done"]], "filters[0]"),
    ([["has_not_done", SIGNUP, SIGNUP]], "filters[0]"),
])
def test_behavioral_filters_hold_one_event_condition(store: Store, filters: list[Any],
                                                     field: str) -> None:
    assert refused(store, metrics=["visitors"], filters=filters) == field


def test_a_goal_inside_has_done_is_no_goal_filter_for_conversion_rates(store: Store) -> None:
    assert refused(store, metrics=["conversion_rate"],
                   filters=[["has_done", SIGNUP]]) == "metrics[0]"


# Group conversion rate


def test_group_conversion_rate_divides_by_the_group_and_orders_by_it(store: Store) -> None:
    found = rows(store, metrics=["group_conversion_rate", "visitors", "conversion_rate"],
                 dimensions=["visit:device"], filters=[SIGNUP])
    # Mobile: 1 of 2 visitors converted; desktop: 1 of 4. Of all 6: 16.7 each.
    assert [row[1:] for row in found] == [[50.0, 1, 16.7], [25.0, 1, 16.7]]


def test_group_conversion_rate_by_time_and_by_page(store: Store) -> None:
    assert rows(store, metrics=["visitors", "group_conversion_rate"], dimensions=["time:day"],
                date_range=[day(0).isoformat(), day(1).isoformat()], filters=[SIGNUP]) == [
        [day(0).isoformat(), 2, 33.3], [day(1).isoformat(), 1, 50.0]]
    assert rows(store, metrics=["visitors", "events", "group_conversion_rate"],
                dimensions=["event:page"], filters=[SIGNUP]) == [
        ["/blog", 1, 1, 100.0], ["/signup", 1, 1, 100.0]]


def test_group_conversion_rate_keeps_visit_filters_in_its_base(store: Store) -> None:
    assert rows(store, metrics=["group_conversion_rate"], dimensions=["event:page"],
                filters=[SIGNUP, ["is", "visit:device", ["mobile"]]]) == [["/blog", 100.0]]
    assert refused(store, metrics=["group_conversion_rate"],
                   dimensions=["visit:device"]) == "metrics[0]"


def test_group_rates_are_compared_with_the_groups_of_the_other_period(store: Store) -> None:
    found = report(store, metrics=["group_conversion_rate"], dimensions=["visit:device"],
                   filters=[SIGNUP], date_range=DAY1,
                   include={"comparisons": {"mode": "previous_period"}}).results
    assert [(row["metrics"], row["comparison"]["metrics"], row["comparison"]["change"])
            for row in found] == [([50.0], [25.0], [100])]


# Comparisons


def test_previous_period_comparison_in_plausibles_shape(store: Store) -> None:
    found = report(store, metrics=["visitors", "conversion_rate"], date_range=DAY1,
                   filters=[SIGNUP], include={"comparisons": {"mode": "previous_period"}})
    assert found.results == [{"dimensions": [], "metrics": [1, 50.0],
                              "comparison": {"dimensions": [], "metrics": [2, 33.3],
                                             "change": [-50, 16.7]}}]
    assert found.meta["comparison_date_range"] == DAY0


def test_our_comparison_extension_still_answers(store: Store) -> None:
    found = report(store, metrics=["visitors"], date_range=DAY1,
                   include={"comparison": "previous_period"})
    assert found.results[0]["comparison"]["metrics"] == [6]


def test_a_compared_time_series_has_every_bucket(store: Store) -> None:
    found = report(store, metrics=["visitors", "visit_duration"], dimensions=["time:day"],
                   date_range=[day(1).isoformat(), day(2).isoformat()],
                   include={"comparisons": {"mode": "previous_period"}}).results
    assert found == [
        {"dimensions": [day(1).isoformat()], "metrics": [2, 15],
         "comparison": {"dimensions": [day(-1).isoformat()], "metrics": [0, None],
                        "change": [100, None]}},
        {"dimensions": [day(2).isoformat()], "metrics": [0, None],
         "comparison": {"dimensions": [day(0).isoformat()], "metrics": [6, 110],
                        "change": [-100, None]}}]


def test_year_over_year_and_custom_comparisons(store: Store) -> None:
    yearly = report(store, metrics=["visitors"], date_range=DAY1,
                    include={"comparisons": {"mode": "year_over_year"}})
    assert yearly.results[0]["comparison"] == {"dimensions": [], "metrics": [0],
                                               "change": [100]}
    assert yearly.meta["comparison_date_range"] == [(day(1) - timedelta(days=365)).isoformat()] * 2
    custom = report(store, metrics=["visitors"], date_range=DAY1, include={
        "comparisons": {"mode": "custom", "date_range": DAY0}})
    assert custom.results[0]["comparison"]["metrics"] == [6]


@pytest.mark.parametrize("include, field", [
    ({"comparisons": {"mode": "last_week"}}, "include.comparisons.mode"),
    ({"comparisons": {"mode": "custom"}}, "include.comparisons.date_range"),
    ({"comparisons": {"mode": "previous_period", "date_range": DAY0}},
     "include.comparisons.date_range"),
    ({"comparisons": {"mode": "previous_period", "match_day_of_week": 1}},
     "include.comparisons.match_day_of_week"),
    ({"comparisons": {"mode": "previous_period", "shift": 1}}, "include.comparisons.shift"),
    ({"comparisons": "previous_period"}, "include.comparisons"),
    ({"comparisons": {"mode": "custom", "date_range": ["2021-02-30", "2021-03-01"]}},
     "include.comparisons.date_range[0]"),
])
def test_comparisons_that_cannot_be_read_name_their_field(store: Store, include: dict[str, Any],
                                                          field: str) -> None:
    assert refused(store, metrics=["visitors"], include=include) == field


def _compared(first: str, last: str, mode: str, match: bool = False,
              today: date = date(2023, 6, 1)) -> tuple[str, str]:
    spec = parse_query({"site_id": SITE, "date_range": [first, last], "metrics": ["visitors"],
                        "include": {"comparisons": {"mode": mode, "match_day_of_week": match}}})
    period = resolve(spec.date_range, "UTC", datetime.combine(today, datetime.min.time(), UTC))
    found = compared_period(spec, period, "UTC", datetime.combine(today, datetime.min.time(),
                                                                  UTC))
    return found.first_day.isoformat(), found.last_day.isoformat()


def test_comparison_periods_as_plausible_picks_them() -> None:
    assert _compared("2023-01-01", "2023-01-07", "previous_period") == \
        ("2022-12-25", "2022-12-31")
    assert _compared("2023-01-01", "2023-01-07", "year_over_year") == \
        ("2022-01-01", "2022-01-07")
    # Sunday 2023-01-01 against the next Sunday of a year before, 2022-01-02.
    assert _compared("2023-01-01", "2023-01-07", "year_over_year", match=True) == \
        ("2022-01-02", "2022-01-08")
    # Three days from Tuesday: the next Tuesday is the range's own first day, so the one before.
    assert _compared("2023-01-03", "2023-01-05", "previous_period", match=True) == \
        ("2022-12-27", "2022-12-29")
    # A range running past today compares the days up to today with as many before them.
    assert _compared("2023-05-30", "2023-06-10", "previous_period") == \
        ("2023-05-27", "2023-05-29")


# Share links


def _releaser(store: Store, k: int, epsilon: float = 1.0) -> Releaser:
    """A share token's releaser; a huge ``epsilon`` makes the noise negligible, so that a
    test sees the rules applied to the counts themselves."""
    clock = NOW.timestamp
    return Releaser(ShareAccess(f"semantics-{k}-{epsilon}", k, epsilon, 1000 * epsilon),
                    b"s" * 32, PrivacyBudget(store, clock), ReleaseCache(clock))


def test_share_links_suppress_behavioral_filters_under_k(store: Store) -> None:
    few = report(store, releaser=_releaser(store, 3), metrics=["visitors"],
                 filters=[["has_done", SIGNUP]])  # two visitors did it: fewer than k
    assert few.results[0]["metrics"] == [None]
    many = report(store, releaser=_releaser(store, 3), metrics=["visitors", "bounce_rate"],
                  filters=[["has_not_done", SIGNUP]])
    visitors, bounce_rate = many.results[0]["metrics"]
    assert visitors is not None and 0 <= bounce_rate <= 100


def test_share_links_bound_the_entries_a_page_filtered_bounce_rate_divides_by(
        store: Store) -> None:
    spec = parse_query({"site_id": SITE, "date_range": DAY0, "metrics": ["bounce_rate"],
                        "filters": [["is", "event:page", ["/pricing"]]]})
    context = SiteContext(SITE, "UTC", GOALS)
    period = resolve(spec.date_range, "UTC", NOW)
    built = build(spec, context, period, plan(spec, period, True), bounds=SHARE_BOUNDS)
    assert "entries" in built.components
    assert f"least(b_c_entries, {SHARE_BOUNDS.visits})" in built.sql
    found = report(store, releaser=_releaser(store, 2), metrics=["bounce_rate"],
                   filters=[["is", "event:page", ["/pricing"]]])
    assert 0 <= found.results[0]["metrics"][0] <= 100


def test_share_links_release_figures_of_second_queries_as_noisy_counts(store: Store) -> None:
    rates = report(store, releaser=_releaser(store, 1), metrics=["group_conversion_rate"],
                   dimensions=["visit:device"], filters=[SIGNUP]).results
    # A group released with fewer than k visitors has none: with k = 1, one noised to 0.
    assert len(rates) == 2 and all(row["metrics"][0] is None or 0 <= row["metrics"][0] <= 100
                                   for row in rates)
    pages = report(store, releaser=_releaser(store, 1), dimensions=["event:page"],
                   metrics=["visitors", "bounce_rate", "visit_duration"]).results
    assert len(pages) == 5 and all(row["metrics"][0] is not None for row in pages)


def test_share_links_show_no_figure_of_fewer_than_k_entries_or_group_members(
        store: Store) -> None:
    # Three visitors saw /pricing, only two entered there: with k = 3 the page's visitors
    # are shown, its entry visits' bounce rate and duration are not.
    pricing = report(store, releaser=_releaser(store, 3, NOISELESS), dimensions=["event:page"],
                     metrics=["visitors", "bounce_rate", "visit_duration"],
                     filters=[["is", "event:page", ["/pricing"]]]).results
    assert pricing[0]["metrics"] == [3, None, None]
    filtered = report(store, releaser=_releaser(store, 3, NOISELESS),
                      metrics=["visitors", "bounce_rate"],
                      filters=[["is", "event:page", ["/pricing"]]]).results
    assert filtered[0]["metrics"] == [3, None]
    entered = report(store, releaser=_releaser(store, 2, NOISELESS), metrics=["bounce_rate"],
                     filters=[["is", "event:page", ["/pricing"]]])
    assert entered.results[0]["metrics"] == [50]


def test_share_links_bound_the_second_queries_too() -> None:
    assert SHARE_BOUNDS.of("group_visitors") == 1
    assert SHARE_BOUNDS.of("entry_duration") == SHARE_BOUNDS.duration
    spec = parse_query({"site_id": SITE, "date_range": DAY0, "filters": [SIGNUP],
                        "metrics": ["group_conversion_rate"], "dimensions": ["event:page"]})
    period = resolve(spec.date_range, "UTC", NOW)
    for second in (group_spec(spec), entry_spec(dataclasses.replace(
            spec, metrics=("bounce_rate",), filters=()))):
        assert second is not None
        built = build(second, SiteContext(SITE, "UTC", GOALS), period,
                      plan(second, period, True), paginate=False, bounds=SHARE_BOUNDS)
        assert f"LIMIT {SHARE_BOUNDS.rows} BY b_visitor" in built.sql


def test_share_links_order_by_the_first_released_metric(store: Store) -> None:
    found = report(store, releaser=_releaser(store, 1), metrics=["pageviews", "visitors"],
                   dimensions=["event:page"]).results
    released = [row["metrics"][0] for row in found]
    assert len(found) == 5 and released == sorted(released, reverse=True)


def test_share_links_divide_percentage_and_conversion_rate_by_their_own_bases(
        store: Store) -> None:
    # A goal filter stays in the percentage's base and leaves the conversion rate's: with
    # both asked, the mobile row's percentage is of converting visitors (1 of 2), its
    # conversion rate of all visitors (1 of 6), each from its own released base.
    body: dict[str, Any] = {"dimensions": ["visit:device"], "filters": [SIGNUP],
                            "metrics": ["visitors", "percentage", "conversion_rate"]}
    exact = [row["metrics"] for row in report(store, **body).results]
    assert exact == [[1, 50.0, 16.7], [1, 50.0, 16.7]]
    released = report(store, releaser=_releaser(store, 1, NOISELESS), **body).results
    assert [row["metrics"] for row in released] == exact
