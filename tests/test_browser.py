"""The tracker in a real Chromium against the real collector on loopback ports.

One browser and one pair of servers per module; each scenario uses its own
site domain, so rows never mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette

from collector.storage import Store
from tests.browser_support import (  # noqa: F401 (fixtures)
    BROWSER_MARKS,
    CHROMIUM,
    DESKTOP_USER_AGENT,
    LAUNCH_ARGS,
    SEND_SPY,
    BackgroundServer,
    site_app,
    wait_until,
)

pytestmark = BROWSER_MARKS
sync_api = pytest.importorskip("playwright.sync_api")

HN_REFERRER = "https://news.ycombinator.com/item?id=1"
EVENT_COLUMNS = "name, pathname, referrer, referrer_source, prop_keys, prop_values, interactive"


@pytest.fixture(scope="module")
def site(collector: tuple[str, Starlette]) -> Iterator[str]:
    with BackgroundServer(site_app(collector[0])) as server:
        yield server.url


@pytest.fixture()
def new_context(browser: Any) -> Iterator[Callable[..., Any]]:
    contexts = []

    def make(**options: Any) -> Any:
        context = browser.new_context(user_agent=DESKTOP_USER_AGENT, **options)
        context.add_init_script(SEND_SPY)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


class EventTraffic:
    """The page's posts to /api/event, counted when their responses have arrived."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.responses: list[Any] = []
        page.on("requestfinished", self._finished)

    def _finished(self, request: Any) -> None:
        if urlsplit(request.url).path == "/api/event":
            self.responses.append(request.response())

    def after(self, action: Callable[[], object], count: int = 1) -> None:
        """Run ``action`` and wait until it has delivered ``count`` more events."""
        expected = len(self.responses) + count
        action()
        wait_until(lambda: len(self.responses) >= expected,
                   poll=lambda: self.page.wait_for_timeout(10))


def stored(app: Starlette, store: Store, site: str) -> list[tuple[Any, ...]]:
    """The site's events but engagement reports (test_tracker_browser.py checks those)."""
    app.state.writer.flush()
    return store.rows(f"SELECT {EVENT_COLUMNS} FROM events WHERE site = {{site:String}} "
                      "AND name != 'engagement' ORDER BY timestamp, name", {"site": site})


def sent(page: Any) -> int:
    return int(page.evaluate("window.__sent"))


def storage_keys(page: Any) -> list[str]:
    return list(page.evaluate("Object.keys(localStorage).concat(Object.keys(sessionStorage))"))


def test_pageviews_spa_routes_custom_events_downloads_and_outbound_clicks(
        collector: tuple[str, Starlette], site: str, store: Store,
        new_context: Callable[..., Any]) -> None:
    collector_url, app = collector
    context = new_context()
    hosts: set[str] = set()
    context.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page = context.new_page()
    traffic = EventTraffic(page)

    # The pageview, then the call queued before the script loaded.
    traffic.after(lambda: page.goto(site + "/", referer=HN_REFERRER), count=2)
    # Each route change: the engagement report of the page left, then the pageview.
    traffic.after(lambda: page.click("#products"), count=2)
    traffic.after(lambda: page.click("#product"), count=2)
    traffic.after(lambda: page.go_back(), count=2)  # popstate
    # Same path, new query: bookkeeping, not a new page.
    page.evaluate("history.replaceState({}, '', '/products?sort=price')")
    called_back = page.evaluate("""() => new Promise(resolve => collector("Add To Cart", {
        props: {sku: "42", price: 9.5}, interactive: false, callback: () => resolve(true)}))""")
    traffic.after(lambda: None)
    assert called_back is True
    with page.expect_download():
        traffic.after(lambda: page.click("#download"))
    assert storage_keys(page) == []
    assert all(response.status == 202 for response in traffic.responses)
    assert not [r for r in traffic.responses if "x-collector-dropped" in r.headers]
    with page.expect_navigation():
        page.click("#outbound")
    # The beacon outlives the page it left, so look for it where it lands.
    wait_until(lambda: "Outbound Link: Click" in [
        name for name, *_ in stored(app, store, "spa.example")])
    rows = stored(app, store, "spa.example")
    assert [(name, path) for name, path, *_ in rows if name == "pageview"] == [
        ("pageview", "/"), ("pageview", "/products"), ("pageview", "/products/42"),
        ("pageview", "/products")]
    landed = f"http://localhost:{urlsplit(site).port}/landed"
    assert sorted((name, path, dict(zip(keys, values)), interactive)
                  for name, path, _, _, keys, values, interactive in rows
                  if name != "pageview") == [
        ("Add To Cart", "/products", {"sku": "42", "price": "9.5"}, 0),
        ("File Download", "/products", {"url": f"{site}/files/report.pdf"}, 1),
        ("Outbound Link: Click", "/products", {"url": landed}, 1),
        ("Queued Signup", "/", {"plan": "pro"}, 1),
    ]
    assert {(referrer, source) for _, _, referrer, source, *_ in rows} == {
        ("news.ycombinator.com/item", "Hacker News")}
    assert context.cookies() == []
    assert all(not origin.get("localStorage") for origin in context.storage_state()["origins"])
    assert hosts <= {urlsplit(site).netloc, urlsplit(collector_url).netloc,
                     f"localhost:{urlsplit(site).port}"}


def test_hash_routes_count_only_in_hash_mode(collector: tuple[str, Starlette], site: str,
                                             store: Store,
                                             new_context: Callable[..., Any]) -> None:
    page = new_context().new_page()
    traffic = EventTraffic(page)
    traffic.after(lambda: page.goto(site + "/?site=hash.example&hash"), count=2)
    traffic.after(lambda: page.evaluate("location.hash = '#/cart'"), count=2)
    traffic.after(lambda: page.evaluate("collector('Checkout')"))
    traffic.after(lambda: page.goto(site + "/?site=nohash.example"), count=2)
    page.evaluate("location.hash = '#/cart'")
    traffic.after(lambda: page.evaluate("collector('Checkout')"))
    assert [(name, path) for name, path, *_ in stored(collector[1], store, "hash.example")
            if name != "Queued Signup"] == [
        ("pageview", "/"), ("pageview", "/#/cart"), ("Checkout", "/#/cart")]
    assert [(name, path) for name, path, *_ in stored(collector[1], store, "nohash.example")
            if name != "Queued Signup"] == [("pageview", "/"), ("Checkout", "/")]


@pytest.mark.parametrize(("signal", "headers"), [
    ("Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})",
     {"DNT": "1"}),
    ("Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
     {"Sec-GPC": "1"}),
], ids=["dnt", "gpc"])
def test_do_not_track_and_gpc_send_nothing(collector: tuple[str, Starlette], site: str,
                                           store: Store, new_context: Callable[..., Any],
                                           signal: str, headers: dict[str, str]) -> None:
    context = new_context(extra_http_headers=headers)
    context.add_init_script(signal)
    page = context.new_page()
    page.goto(site + "/?site=dnt.example")
    page.wait_for_function("typeof collector.optOut == 'function'")
    page.click("#products")
    assert page.evaluate("""() => new Promise(resolve =>
        collector("Signup", {callback: () => resolve(true)}))""") is True
    assert sent(page) == 0
    assert stored(collector[1], store, "dnt.example") == []


def test_the_server_drops_what_a_dnt_header_comes_with(
        collector: tuple[str, Starlette], site: str, store: Store,
        new_context: Callable[..., Any]) -> None:
    # navigator.doNotTrack is unset here, so the script sends; the header alone must suffice.
    page = new_context(extra_http_headers={"DNT": "1"}).new_page()
    traffic = EventTraffic(page)
    traffic.after(lambda: page.goto(site + "/?site=dnt-header.example"), count=2)
    assert {r.headers.get("x-collector-dropped") for r in traffic.responses} == {"opt-out"}
    assert stored(collector[1], store, "dnt-header.example") == []


def test_opt_out_stops_everything_and_stores_one_key(
        collector: tuple[str, Starlette], site: str, store: Store,
        new_context: Callable[..., Any]) -> None:
    page = new_context().new_page()
    traffic = EventTraffic(page)
    traffic.after(lambda: page.goto(site + "/?site=optout.example"), count=2)
    assert storage_keys(page) == []

    page.evaluate("collector.optOut()")
    assert page.evaluate("Object.entries(localStorage)") == [["collector_ignore", "1"]]
    assert storage_keys(page) == ["collector_ignore"]
    before = sent(page)
    page.click("#products")
    page.evaluate("collector('Signup')")
    assert sent(page) == before
    page.reload()
    page.wait_for_function("typeof collector.optOut == 'function'")
    assert sent(page) == 0

    page.evaluate("collector.optIn()")
    assert storage_keys(page) == []
    traffic.after(lambda: page.evaluate("collector('Back In')"))
    assert sorted(name for name, *_ in stored(collector[1], store, "optout.example")) == [
        "Back In", "Queued Signup", "pageview"]


def test_the_noscript_pixel_counts_a_pageview_without_javascript(
        collector: tuple[str, Starlette], site: str, store: Store,
        new_context: Callable[..., Any]) -> None:
    context = new_context(java_script_enabled=False)
    page = context.new_page()
    with page.expect_response(lambda response: "/pixel.gif" in response.url) as pixel:
        page.goto(site + "/no-js")
    assert pixel.value.status == 200
    assert "x-collector-dropped" not in pixel.value.headers
    assert [(name, path) for name, path, *_ in stored(collector[1], store, "pixel.example")] == [
        ("pageview", "/no-js")]
    assert context.cookies() == []
