"""Sites: a timezone is refused only when ClickHouse does not know it."""

from __future__ import annotations

import pytest

from collector.errors import InvalidField, StorageError
from collector.sites import add_site, list_sites
from collector.storage import Store, open_store
from tests.conftest import fresh_database_name


def test_a_known_timezone_is_stored(store: Store) -> None:
    add_site(store, "berlin.test", "Europe/Berlin")
    assert [site.timezone for site in list_sites(store, "berlin.test")] == ["Europe/Berlin"]


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "", "Europe/Berlin ", "+03:00"])
def test_an_unknown_timezone_names_the_field(store: Store, timezone: str) -> None:
    with pytest.raises(InvalidField, match="unknown timezone") as caught:
        add_site(store, "mars.test", timezone)
    assert caught.value.field == "timezone"
    assert list_sites(store, "mars.test") == []


def test_a_store_that_cannot_answer_is_not_an_unknown_timezone(engine_url: str) -> None:
    unreachable = open_store(engine_url, fresh_database_name("sites_down"))
    unreachable.close()
    with pytest.raises(StorageError):
        add_site(unreachable, "down.test", "Europe/Berlin")
