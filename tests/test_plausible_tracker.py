"""Plausible's own npm tracker, in a real Chromium, against our ``POST /api/event``.

The official package is fetched from the npm registry at test time (never vendored),
checked against its pinned integrity, cached in pytest's cache directory, and
served to a test page that imports it as an ES module through an import map,
exactly as a bundler-less app would. The same page with our script instead shows
that both report engagement alike; both are measured the same way for their size.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from collector.storage import Store
from collector.tracker.assets import SCRIPT
from collector.tracker.build import gzipped_size
from tests.browser_support import (  # noqa: F401 (fixtures)
    BROWSER_MARKS,
    CHROMIUM,
    DESKTOP_USER_AGENT,
    LAUNCH_ARGS,
    BackgroundServer,
    wait_until,
)
from tests.engagement_support import BLUR, HIDE, SHOW, depth, pause_clock, scroll_to
from tests.npm_packages import PinnedPackage, pinned_file

pytestmark = BROWSER_MARKS
sync_api = pytest.importorskip("playwright.sync_api")

PACKAGE = "@plausible-analytics/tracker"
VERSION = "0.4.6"
# dist.integrity of the pinned version, as the npm registry publishes it.
INTEGRITY = ("sha512-nbu6xGgSP6jeYuoVklZBzucUnIpo75tVu3Kr+R0EDycVKaMC/jF5Q/YCaM/8gR4fPZ1IDcXt6F"
             "dBJFZ1uZwEPA==")
BUNDLE = "package/plausible.js"  # the package's only build: an ES module exporting init/track
SITE = "plausible-npm.example"
OUR_SITE = "ours-beside-npm.example"
HN_REFERRER = "https://news.ycombinator.com/item?id=1"
EVENT_COLUMNS = "name, pathname, referrer, referrer_source, prop_keys, prop_values, interactive"


@pytest.fixture(scope="module")
def plausible_js(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The pinned package's browser bundle; fetched once, then read from the cache."""
    return pinned_file(PinnedPackage(PACKAGE, VERSION, INTEGRITY), BUNDLE, request,
                       tmp_path_factory)


def plausible_site_app(collector_url: str, bundle: bytes) -> Starlette:
    """A small SPA that imports Plausible's npm module by its package name."""

    async def tracker(request: Request) -> Response:
        return Response(bundle, media_type="text/javascript")

    async def report(request: Request) -> Response:
        return Response(b"%PDF-1.4\n%%EOF\n", media_type="application/pdf",
                        headers={"Content-Disposition": 'attachment; filename="report.pdf"'})

    async def spa(request: Request) -> HTMLResponse:
        if request.query_params.get("tracker") == "ours":  # the same page with our script
            return HTMLResponse(_PAGE.format(tracker=_OURS.format(
                site=OUR_SITE, src=html.escape(f"{collector_url}/js/script.js"))))
        return HTMLResponse(_PAGE.format(tracker=_PLAUSIBLE.format(
            endpoint=html.escape(f"{collector_url}/api/event"), package=PACKAGE, site=SITE)))

    return Starlette(routes=[
        Route("/vendor/plausible.js", tracker),
        Route("/files/report.pdf", report),
        Route("/{path:path}", spa),
    ])


_PLAUSIBLE = """<script type="importmap">
  {{"imports": {{"{package}": "/vendor/plausible.js"}}}}</script>
<script type="module">
  import {{ init, track }} from "{package}";
  init({{domain: "{site}", endpoint: "{endpoint}", captureOnLocalhost: true,
         fileDownloads: true, logging: false}});
  /* Resolves with what the tracker's callback got: {{status}} or {{error}}. */
  window.tracked = (name, options) =>
    new Promise(resolve => track(name, Object.assign({{}}, options, {{callback: resolve}})));
</script>"""
_OURS = """<script defer data-domain="{site}" data-include-localhost data-allow-automation
  src="{src}"></script>"""
_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Plausible npm</title>
{tracker}
</head><body>
<nav><a data-route href="/">Home</a> <a data-route id="pricing" href="/pricing">Pricing</a></nav>
<main id="view">Home</main>
<a id="download" href="/files/report.pdf?session=secret">Annual report</a>
<div style="height: 3000px">A long page, to scroll down.</div>
<script>
  document.addEventListener("click", function (event) {{
    var link = event.target.closest("a[data-route]");
    if (!link) return;
    event.preventDefault();
    history.pushState({{}}, "", link.getAttribute("href"));
    document.getElementById("view").textContent = link.textContent;
  }});
</script>
</body></html>
"""


@pytest.fixture(scope="module")
def site(collector: tuple[str, Starlette], plausible_js: bytes) -> Iterator[str]:
    with BackgroundServer(plausible_site_app(collector[0], plausible_js)) as server:
        yield server.url


class Posts:
    """Every request the page sends to the collector, with its answer once it has one."""

    def __init__(self, page: Any, collector_url: str) -> None:
        self.page = page
        self.origin = urlsplit(collector_url).netloc
        self.answered: list[tuple[Any, Any]] = []  # (request, response)
        self.failed: list[str] = []
        page.on("requestfinished", self._finished)
        page.on("requestfailed", self._failed)

    def _mine(self, request: Any) -> bool:
        return bool(urlsplit(request.url).netloc == self.origin)

    def _failed(self, request: Any) -> None:
        if self._mine(request):
            self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def _finished(self, request: Any) -> None:
        if self._mine(request):
            self.answered.append((request, request.response()))

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.post_data) for request, _ in self.answered
                if request.method == "POST"]

    def names(self) -> list[str]:
        return [body["n"] for body in self.bodies()]

    def wait_for(self, name: str, count: int) -> None:
        """Poll until ``count`` events called ``name`` have been answered."""
        wait_until(lambda: self.failed or self.names().count(name) >= count,
                   poll=lambda: self.page.wait_for_timeout(10))
        assert not self.failed


def stored(app: Starlette, store: Store) -> list[tuple[Any, ...]]:
    app.state.writer.flush()
    return store.rows(f"SELECT {EVENT_COLUMNS} FROM events WHERE site = {{site:String}} "
                      "ORDER BY timestamp, name", {"site": SITE})


def test_plausibles_npm_tracker_is_recorded(collector: tuple[str, Starlette], site: str,
                                            store: Store, browser: Any) -> None:
    collector_url, app = collector
    context = browser.new_context(user_agent=DESKTOP_USER_AGENT)
    try:
        page = context.new_page()
        posts = Posts(page, collector_url)

        page.goto(site + "/", referer=HN_REFERRER)  # init() captures the first pageview
        posts.wait_for("pageview", 1)
        page.wait_for_function("typeof window.tracked == 'function'")
        assert page.evaluate("tracked('Signup', {props: {plan: 'pro'}})") == {"status": 202}
        page.click("#pricing")  # history.pushState: engagement for "/", pageview "/pricing"
        posts.wait_for("pageview", 2)
        assert page.evaluate("tracked('Video Play', {props: {id: 'intro', seconds: 3},"
                             " interactive: false})") == {"status": 202}
        assert page.evaluate("tracked('Purchase', {props: {plan: 'pro'},"
                             " revenue: {amount: 15.99, currency: 'USD'}})") == {"status": 202}
        with page.expect_download():
            page.click("#download")
        posts.wait_for("File Download", 1)
        page.go_back()  # popstate: engagement for "/pricing", pageview "/"
        posts.wait_for("pageview", 3)
        wait_until(lambda: posts.names().count("engagement") >= 2,
                   poll=lambda: page.wait_for_timeout(10))
        assert not posts.failed

        # Every request the tracker made was a POST to /api/event, stored, not dropped.
        requests = [(request.method, urlsplit(request.url).path, response.status,
                     response.headers.get("x-collector-dropped"))
                    for request, response in posts.answered]
        assert set(requests) == {("POST", "/api/event", 202, None)}, requests
        assert {request.headers.get("content-type") for request, _ in posts.answered} == {
            "text/plain"}
        bodies = posts.bodies()
        assert {body["d"] for body in bodies} == {SITE}
        assert bodies[0] == {"n": "pageview", "v": bodies[0]["v"], "u": f"{site}/",
                             "d": SITE, "r": HN_REFERRER}
        assert {body["n"]: body.get("$") for body in bodies}["Purchase"] == {
            "amount": 15.99, "currency": "USD"}
    finally:
        context.close()

    assert [name for name in posts.names() if name != "engagement"] == [
        "pageview", "Signup", "pageview", "Video Play", "Purchase", "File Download",
        "pageview"]
    rows = stored(app, store)
    assert sorted((name, path, sorted(zip(keys, values)), interactive)
                  for name, path, _, _, keys, values, interactive in rows
                  if name != "engagement") == sorted([
        ("pageview", "/", [], 1),
        ("Signup", "/", [("plan", "pro")], 1),
        ("pageview", "/pricing", [], 1),
        ("Video Play", "/pricing", [("id", "intro"), ("seconds", "3")], 0),
        ("Purchase", "/pricing", [("plan", "pro")], 1),  # the revenue ($) is not stored
        ("File Download", "/pricing", [("url", f"{site}/files/report.pdf")], 1),
        ("pageview", "/", [], 1),
    ])
    assert {(referrer, source) for name, _, referrer, source, *_ in rows
            if name != "engagement"} == {("news.ycombinator.com/item", "Hacker News")}
    # Engagement (scroll depth, time on page) is sent for each page left by SPA navigation.
    assert {path for name, path, *_ in rows if name == "engagement"} >= {"/", "/pricing"}


def read_like_a_visitor(browser: Any, url: str, collector_url: str) -> list[Any]:
    """Scroll, read, move on, leave the tab and come back, lose focus: what was reported."""
    context = browser.new_context(user_agent=DESKTOP_USER_AGENT)
    try:
        page = context.new_page()
        pause_clock(page)
        posts = Posts(page, collector_url)
        page.goto(url)
        posts.wait_for("pageview", 1)
        top = depth(page)
        scroll_to(page, 1000)
        deeper = depth(page)
        page.clock.fast_forward(4000)
        page.click("#pricing")  # "/" reports 4 s and its depth; the click scrolled back up
        posts.wait_for("engagement", 1)
        page.clock.fast_forward(1000)
        page.evaluate(HIDE)  # the first report of /pricing: 1 s
        posts.wait_for("engagement", 2)
        page.clock.fast_forward(5000)  # hidden: not engaged
        page.evaluate(SHOW)
        page.clock.fast_forward(2000)
        page.evaluate(HIDE)  # 2 s and no deeper: no news, no report
        page.evaluate(SHOW)
        page.clock.fast_forward(1500)
        page.evaluate(BLUR)  # 3.5 s in all: reported
        posts.wait_for("engagement", 3)
        page.wait_for_timeout(100)
        reports = [(urlsplit(body["u"]).path, body["sd"], body["e"])
                   for body in posts.bodies() if body["n"] == "engagement"]
    finally:
        context.close()
    assert reports == [("/", deeper, 4000), ("/pricing", top, 1000), ("/pricing", top, 3500)]
    return reports


def test_our_tracker_reports_engagement_as_plausibles_does(
        collector: tuple[str, Starlette], site: str, store: Store, browser: Any) -> None:
    collector_url, app = collector
    theirs = read_like_a_visitor(browser, site + "/", collector_url)
    ours = read_like_a_visitor(browser, site + "/?tracker=ours", collector_url)
    assert ours == theirs
    app.state.writer.flush()
    query = ("SELECT pathname, scroll_depth, engaged_ms FROM events WHERE site = {site:String} "
             "AND name = 'engagement' ORDER BY timestamp")
    assert store.rows(query, {"site": OUR_SITE}) == [tuple(report) for report in ours]
    assert [tuple(row) for row in store.rows(query, {"site": SITE})][-3:] == [
        tuple(report) for report in theirs]


def test_our_default_script_is_smaller_than_plausibles_npm_tracker(plausible_js: bytes) -> None:
    """Both gzipped as build.py measures (level 9); the README quotes the two figures."""
    ours, theirs = gzipped_size(SCRIPT.body), gzipped_size(plausible_js)
    assert ours <= 1200 and ours < theirs, (ours, theirs)
