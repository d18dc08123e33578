"""Visits at ingest: boundaries, bounces, durations, entry/exit pages, collapsing rows."""

from __future__ import annotations

from collector.event import VisitRow
from collector.storage import Store
from collector.visits import VISIT_COLUMNS, VISIT_OVERHEAD_BYTES, VisitTracker, visit_id_of
from tests.reporting_data import at, make_event, store_events

MINUTE = 60_000


def _state(rows: list[VisitRow]) -> dict[str, object]:
    """The latest +1 row as a dict."""
    return dict(zip(VISIT_COLUMNS, [row for row in rows if row.sign == 1][-1]))


def test_events_within_thirty_minutes_share_a_visit() -> None:
    tracker = VisitTracker()
    start = at("10:00")
    first, _ = tracker.track(make_event(start, 7, "/a"))
    second, rows = tracker.track(make_event(start + 29 * MINUTE, 7, "/b"))
    assert first.visit == second.visit == visit_id_of("example.com", 7, start)
    state = _state(rows)
    assert (state["pageviews"], state["duration"], state["is_bounce"]) == (2, 29 * 60, 0)
    assert (state["entry_page"], state["exit_page"]) == ("/a", "/b")


def test_a_gap_of_thirty_minutes_starts_a_new_visit() -> None:
    tracker = VisitTracker()
    start = at("10:00")
    first, _ = tracker.track(make_event(start, 7))
    second, rows = tracker.track(make_event(start + 30 * MINUTE, 7))
    assert first.visit != second.visit
    assert len(rows) == 1 and _state(rows)["is_bounce"] == 1


def test_timeout_is_a_constructor_argument() -> None:
    tracker = VisitTracker(timeout_ms=MINUTE)
    first, _ = tracker.track(make_event(0, 1))
    second, _ = tracker.track(make_event(MINUTE, 1))
    assert first.visit != second.visit


def test_an_update_cancels_the_previous_state_then_writes_the_new_one() -> None:
    tracker = VisitTracker()
    _, opening = tracker.track(make_event(1000, 3, "/a"))
    _, update = tracker.track(make_event(5000, 3, "/b"))
    assert [row.sign for row in update] == [-1, 1]
    # The cancel row repeats the old state exactly, with its version.
    assert update[0]._replace(sign=1) == opening[0]
    assert (update[0].version, update[1].version) == (0, 1)
    assert update[1].exit_page == "/b" and update[1].exit_hostname == "example.com"


def test_interactive_custom_event_unbounces_but_non_interactive_does_not() -> None:
    tracker = VisitTracker()
    tracker.track(make_event(0, 1))
    _, rows = tracker.track(make_event(1000, 1, name="Download", interactive=0))
    assert _state(rows)["is_bounce"] == 1 and _state(rows)["events"] == 2
    _, rows = tracker.track(make_event(2000, 1, name="Signup", interactive=1))
    assert _state(rows)["is_bounce"] == 0 and _state(rows)["pageviews"] == 1


def test_engagement_extends_duration_but_is_neither_pageview_nor_event() -> None:
    tracker = VisitTracker()
    tracker.track(make_event(0, 1, "/a"))
    _, rows = tracker.track(make_event(20_000, 1, "/a", name="engagement", engaged_ms=45_000))
    state = _state(rows)
    assert (state["pageviews"], state["events"], state["is_bounce"]) == (1, 1, 1)
    assert state["duration"] == 45 and state["engaged_ms"] == 45_000


def test_engagement_without_a_live_visit_starts_nothing() -> None:
    tracker = VisitTracker()
    event, rows = tracker.track(make_event(0, 1, name="engagement", engaged_ms=1000))
    assert rows == [] and event.visit == 0 and len(tracker) == 0


def test_visit_attributes_come_from_the_first_event() -> None:
    tracker = VisitTracker()
    tracker.track(make_event(0, 1, "/landing", referrer="https://www.google.com/",
                             country="FR"))
    _, rows = tracker.track(make_event(1000, 1, "/next", country="DE"))
    state = _state(rows)
    assert (state["referrer_source"], state["channel"], state["country"]) == \
        ("Google", "Organic Search", "FR")


def test_visitors_are_separate_per_site() -> None:
    tracker = VisitTracker()
    first, _ = tracker.track(make_event(0, 1))
    second, rows = tracker.track(make_event(1000, 1, site="other.org"))
    assert first.visit != second.visit and len(rows) == 1


def test_cache_is_bounded_and_forgets_expired_visits() -> None:
    tracker = VisitTracker(max_visits=3)
    for visitor in range(10):
        tracker.track(make_event(visitor, visitor))
    assert len(tracker) == 3
    tracker.track(make_event(31 * MINUTE + 10, 99))
    assert len(tracker) == 1


def test_the_memory_bound_alone_decides_how_many_visits_fit() -> None:
    # No fixed count: given the memory, more than the old fixed 200,000 visits are kept;
    # given less, fewer, and never more than the memory holds.
    roomy = VisitTracker(max_bytes=1024 * 1024 * 1024)
    for visitor in range(210_000):
        roomy.track(make_event(visitor, visitor))
    assert len(roomy) == 210_000
    tight = VisitTracker(max_bytes=1024 * 1024)
    for visitor in range(5000):
        tight.track(make_event(visitor, visitor))
    assert tight.estimated_bytes <= 1024 * 1024
    most = 1024 * 1024 // VISIT_OVERHEAD_BYTES
    assert most // 2 < len(tight) < most


def test_sign_sums_in_clickhouse_equal_the_final_visits(store: Store) -> None:
    start = at("10:00")
    events = [
        make_event(start, 1, "/a"), make_event(start + MINUTE, 1, "/b"),
        make_event(start + 2 * MINUTE, 1, "/c"),                      # visit 1: 3 pages, 120 s
        make_event(start, 2, "/a"),                                   # visit 2: bounce
        make_event(start, 3, "/x"), make_event(start + 5000, 3, "/x", name="Signup"),  # no bounce
        make_event(start + 40 * MINUTE, 1, "/z"),                     # visit 4: new, bounce
    ]
    store_events(store, events)
    visits, bounces, pageviews, duration = store.rows(
        "SELECT sum(sign), sum(sign * is_bounce), sum(sign * pageviews), sum(sign * duration) "
        "FROM visits")[0]
    assert (visits, bounces, pageviews, duration) == (4, 2, 6, 125)
    entries = store.rows(
        "SELECT entry_page, exit_page FROM visits FINAL WHERE visitor = 1 ORDER BY start_time")
    assert entries == [("/a", "/c"), ("/z", "/z")]
    linked = store.rows("SELECT uniqExact(visit) FROM events WHERE visitor = 1")[0][0]
    assert linked == 2
