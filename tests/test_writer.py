"""The write buffer: batches, bounds, retries with deduplication, shutdown flush."""

from __future__ import annotations

import json

import pytest

from collector.errors import OverloadedError, StorageError
from collector.event import EVENT_COLUMNS
from collector.storage import Store
from collector.writer import Writer
from tests.conftest import CHROME_UA, flush, running_app
from tests.test_storage import sample_event

HEADERS = {"User-Agent": CHROME_UA, "Content-Type": "text/plain"}


def count(store: Store, site: str) -> int:
    return int(store.rows("SELECT count() FROM events WHERE site = {s:String}", {"s": site})[0][0])


def test_flush_writes_every_buffered_row(store: Store) -> None:
    writer = Writer(store, {"events": EVENT_COLUMNS}, flush_interval=60)
    for index in range(250):
        writer.add({"events": [sample_event("flush.test", f"/{index}")]}, 100)
    assert writer.buffered_rows == 250
    writer.flush()
    assert writer.buffered_rows == 0
    assert count(store, "flush.test") == 250


def test_background_flush_by_row_count(store: Store) -> None:
    writer = Writer(store, {"events": EVENT_COLUMNS}, flush_interval=60, flush_rows=10)
    writer.start()
    try:
        writer.add({"events": [sample_event("rows.test")] * 10}, 100)
        for _ in range(200):
            if count(store, "rows.test") == 10:
                break
            writer._wake.wait(0.05)
        assert count(store, "rows.test") == 10
    finally:
        writer.stop()


def test_a_full_buffer_refuses_instead_of_dropping(store: Store) -> None:
    writer = Writer(store, {"events": EVENT_COLUMNS}, flush_interval=60, max_rows=5)
    writer.add({"events": [sample_event("full.test")] * 5}, 100)
    with pytest.raises(OverloadedError):
        writer.add({"events": [sample_event("full.test")]}, 100)
    writer.flush()
    assert count(store, "full.test") == 5


def test_failed_inserts_are_retried_without_duplicates(store: Store) -> None:
    store.command("CREATE TABLE IF NOT EXISTS flaky (site String) ENGINE = MergeTree ORDER BY site "
                  "SETTINGS non_replicated_deduplication_window = 100")
    writer = Writer(store, {"events": EVENT_COLUMNS, "flaky_missing": ("site",)}, flush_interval=60)
    writer.add({"events": [sample_event("retry.test")] * 3, "flaky_missing": [("x",)]}, 100)
    with pytest.raises(StorageError):
        writer.flush()  # events go in, the second table does not exist yet
    assert count(store, "retry.test") == 3
    store.command("CREATE TABLE flaky_missing (site String) ENGINE = MergeTree ORDER BY site")
    writer.flush()
    assert count(store, "retry.test") == 3  # the retry did not write the events again
    assert store.rows("SELECT count() FROM flaky_missing") == [(1,)]


def test_stop_writes_everything_and_refuses_more(store: Store) -> None:
    writer = Writer(store, {"events": EVENT_COLUMNS}, flush_interval=60)
    writer.start()
    writer.add({"events": [sample_event("stop.test")] * 7}, 100)
    writer.stop()
    assert count(store, "stop.test") == 7
    with pytest.raises(OverloadedError):
        writer.add({"events": [sample_event("stop.test")]}, 100)


def test_the_cap_counts_batches_that_failed(store: Store) -> None:
    writer = Writer(store, {"events": EVENT_COLUMNS, "cap_missing": ("site",)}, flush_interval=60,
                    max_rows=5)
    writer.add({"events": [sample_event("cap.test")] * 3, "cap_missing": [("x",)]}, 100)
    with pytest.raises(StorageError):
        writer.flush()
    assert writer.buffered_rows == 4  # taken into a batch, not written: still counted
    with pytest.raises(OverloadedError):
        writer.add({"events": [sample_event("cap.test")] * 2}, 100)
    store.command("CREATE TABLE cap_missing (site String) ENGINE = MergeTree ORDER BY site")
    writer.flush()
    assert writer.buffered_rows == 0
    writer.add({"events": [sample_event("cap.test")] * 2}, 100)
    writer.flush()
    assert count(store, "cap.test") == 5


def test_an_event_refused_for_room_leaves_its_visit_as_it_was(store: Store,
                                                              engine_url: str) -> None:
    # Room for the first event and its visit (2 rows), not for the next one (3 rows).
    with running_app(store, engine_url, buffer_max_rows=3, flush_interval=60) as client:
        def send(path: str) -> int:
            body = json.dumps({"n": "pageview", "u": f"https://room.test{path}",
                               "d": "room.test"})
            return client.post("/api/event", content=body, headers=HEADERS).status_code

        assert send("/1") == 202
        assert send("/2") == 503  # refused before the visit tracker counted it
        flush(client)
        assert send("/3") == 202
        flush(client)
    [(visits, events, pageviews)] = store.rows(
        "SELECT sum(sign), sum(sign * events), sum(sign * pageviews) FROM visits "
        "WHERE site = 'room.test'")
    assert (visits, events, pageviews) == (1, 2, 2)
    # Each -1 row cancels a +1 row that was stored: a (visit, version) sums to 0 or 1.
    assert store.rows("SELECT DISTINCT sum(sign) FROM visits WHERE site = 'room.test' "
                      "GROUP BY visit, version ORDER BY 1") == [(0,), (1,)]
