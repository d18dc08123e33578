"""Our tracker in a real Chromium: engagement events, and every script variant named after
Plausible's doing what a Plausible snippet of that name expects.

Clock, hiding and blurring: ``tests.engagement_support``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from collector.storage import Store
from tests.browser_support import (  # noqa: F401 (fixtures)
    BROWSER_MARKS,
    CHROMIUM,
    DESKTOP_USER_AGENT,
    LAUNCH_ARGS,
    SEND_SPY,
    BackgroundServer,
    wait_until,
)
from tests.engagement_support import BLUR, FOCUS, HIDE, SHOW, depth, pause_clock, scroll_to

pytestmark = BROWSER_MARKS
sync_api = pytest.importorskip("playwright.sync_api")

# The page's own script calls queue up, as Plausible's snippet has them do.
PLAUSIBLE_STUB = ("window.plausible=window.plausible||function(){"
                  "(window.plausible.q=window.plausible.q||[]).push(arguments)}")
COUNTED = "data-include-localhost data-allow-automation"  # the test site is on 127.0.0.1


def variant_site(collector_url: str) -> Starlette:
    """Pages loading ``/js/<script>`` with the attributes the query names."""

    async def page(request: Request) -> HTMLResponse:
        query = request.query_params
        attributes = query.get("attributes", COUNTED)
        return HTMLResponse(_PAGE.format(
            stub=PLAUSIBLE_STUB, site=html.escape(query.get("site", "variants.example")),
            attributes=attributes,
            src=html.escape(f"{collector_url}/js/{query.get('script', 'script.js')}"),
            calls=query.get("calls", "")))

    async def plain(request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>Elsewhere</title><p>No tracker here.</p>")

    async def file(request: Request) -> Response:
        return Response(b"data", media_type="application/octet-stream",
                        headers={"Content-Disposition": "attachment"})

    return Starlette(routes=[Route("/elsewhere", plain), Route("/files/{name}", file),
                             Route("/{path:path}", page)])


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Variant</title>
<script>{stub}</script>
<script>{calls}</script>
<script defer id="plausible" data-domain="{site}" {attributes} src="{src}"></script>
</head><body>
<nav><a data-route id="next" href="/next">Next</a></nav>
<div style="height: 3000px">A long page.</div>
<a id="outbound" href="https://partner.example/landing?token=secret">Partner</a>
<a id="pdf" href="/files/report.pdf?session=secret">Report</a>
<a id="xyz" href="/files/data.xyz">Data</a>
<div class="plausible-event-name=Signup+Now plausible-event-plan=pro
            plausible-revenue-amount=9.5 plausible-revenue-currency=EUR">
  <button id="tagged"><span id="inner">Sign up</span></button>
</div>
<a id="tagged-link" class="plausible-event-name=Docs" href="/docs?token=secret">Docs</a>
<button id="plain">Nothing</button>
<form id="form" class="plausible-event-name=Subscribe"><button id="submit">Go</button></form>
<script>
  document.getElementById("form").addEventListener("submit", e => e.preventDefault());
  /* The partner and the docs stay on this page (no new tab either): their clicks count. */
  for (const id of ["outbound", "tagged-link"])
    for (const type of ["click", "auxclick"])
      document.getElementById(id).addEventListener(type, e => e.preventDefault());
  document.addEventListener("click", function (event) {{
    var link = event.target.closest("a[data-route]");
    if (!link) return;
    event.preventDefault();
    history.pushState({{}}, "", link.getAttribute("href") + location.search);
  }});
</script>
</body></html>
"""

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium with a normal user agent for the whole browser: a context's
    agent is not the one beacons sent while a page unloads carry ("HeadlessChrome"),
    which the collector would drop as a bot."""
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*LAUNCH_ARGS, f"--user-agent={DESKTOP_USER_AGENT}"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(collector: tuple[str, Starlette]) -> Iterator[str]:
    with BackgroundServer(variant_site(collector[0])) as server:
        yield server.url


class Posts:
    """The page's events to the collector, as sent, once answered."""

    def __init__(self, page: Any, collector_url: str) -> None:
        self.page = page
        self.origin = urlsplit(collector_url).netloc
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        page.on("requestfinished", self._finished)

    def _finished(self, request: Any) -> None:
        if urlsplit(request.url).netloc == self.origin and request.method == "POST":
            self.bodies.append(json.loads(request.post_data))
            self.statuses.append(request.response().status)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [body for body in self.bodies if body["n"] == name]

    def wait_for(self, name: str, count: int = 1) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.named(name)) >= count,
                   poll=lambda: self.page.wait_for_timeout(10))
        return self.named(name)


@pytest.fixture()
def open_page(browser: Any, site: str,
              collector: tuple[str, Starlette]) -> Iterator[Callable[..., tuple[Any, Posts]]]:
    contexts = []

    def make(script: str = "script.js", path: str = "/", attributes: str = COUNTED,
             calls: str = "", clock: bool = False, **query: str) -> tuple[Any, Posts]:
        context = browser.new_context(user_agent=DESKTOP_USER_AGENT)
        context.add_init_script(SEND_SPY)
        contexts.append(context)
        page = context.new_page()
        if clock:
            pause_clock(page)
        posts = Posts(page, collector[0])
        parameters = {"script": script, "attributes": attributes, "calls": calls, **query}
        page.goto(site + path + "?" + "&".join(f"{name}={quote(value)}"
                                                 for name, value in parameters.items()))
        page.wait_for_function("typeof window.plausible.optOut == 'function'", polling=20)
        return page, posts

    yield make
    for context in contexts:
        context.close()


def sent(page: Any) -> int:
    return int(page.evaluate("window.__sent"))


def stored_engagement(app: Starlette, store: Store, site: str) -> list[tuple[Any, ...]]:
    app.state.writer.flush()
    return store.rows("SELECT pathname, scroll_depth, engaged_ms FROM events WHERE site = "
                      "{site:String} AND name = 'engagement' ORDER BY timestamp",
                      {"site": site})


# -- engagement ------------------------------------------------------------------------

def test_engagement_reports_time_and_scroll_per_page(
        open_page: Callable[..., tuple[Any, Posts]], collector: tuple[str, Starlette],
        store: Store, site: str) -> None:
    page, posts = open_page(site="engaged-spa.example", clock=True)
    posts.wait_for("pageview")
    top = depth(page)  # what a first look at the page shows
    scroll_to(page, 1000)
    deeper = depth(page)
    page.clock.fast_forward(4000)
    page.click("#next")  # the SPA moves on: "/" reports, then "/next" counts
    # (clicking the link scrolled back up to it: "/next" starts from the top)
    first, = posts.wait_for("engagement")
    assert urlsplit(posts.wait_for("pageview", 2)[1]["u"]).path == "/next"
    assert (urlsplit(first["u"]).path, first["sd"], first["e"]) == ("/", deeper, 4000)
    assert first["d"] == "engaged-spa.example" and top < deeper
    page.clock.fast_forward(2500)
    page.goto(site + "/elsewhere")  # leaving the page hides it: "/next" reports on its way
    # The report leaves with the page (a beacon): look for it where it lands.
    app = collector[1]
    wait_until(lambda: len(stored_engagement(app, store, "engaged-spa.example")) == 2)
    assert stored_engagement(app, store, "engaged-spa.example") == [
        ("/", deeper, 4000), ("/next", top, 2500)]


def test_engagement_counts_visible_focused_time_and_reports_only_news(
        open_page: Callable[..., tuple[Any, Posts]]) -> None:
    page, posts = open_page(clock=True)
    posts.wait_for("pageview")
    page.clock.fast_forward(1000)
    page.evaluate(HIDE)  # the first report always goes: it holds the first scroll depth
    assert [body["e"] for body in posts.wait_for("engagement")] == [1000]
    page.clock.fast_forward(60_000)  # hidden: not engaged
    page.evaluate(SHOW)
    page.clock.fast_forward(2000)
    page.evaluate(HIDE)  # 2 s more and no deeper: nothing new to say
    page.evaluate(SHOW)
    page.clock.fast_forward(1500)
    page.evaluate(BLUR)  # 3.5 s: reported, on losing focus as on hiding
    assert [body["e"] for body in posts.wait_for("engagement", 2)] == [1000, 3500]
    page.clock.fast_forward(9000)  # not focused: not engaged
    page.evaluate(FOCUS)
    scroll_to(page, 1500)  # deeper, after no time at all: reported
    page.evaluate(BLUR)
    third = posts.wait_for("engagement", 3)[2]
    assert (third["e"], third["sd"]) == (0, depth(page))
    assert sent(page) == 4 and set(posts.statuses) == {202}


def test_engagement_is_sent_for_no_page_that_was_not_counted(
        open_page: Callable[..., tuple[Any, Posts]]) -> None:
    page, posts = open_page()
    posts.wait_for("pageview")
    page.evaluate("plausible.optOut()")
    page.click("#next")  # neither the report on "/" nor the pageview
    page.evaluate(HIDE)
    page.wait_for_timeout(50)
    assert sent(page) == 1 and [body["n"] for body in posts.bodies] == ["pageview"]


# -- the variants ----------------------------------------------------------------------

@pytest.mark.parametrize("script", ["script.js", "plausible.js", "analytics.js",
                                    "script.pageleave.js", "script.compat.js"])
def test_the_default_names_count_pageviews_and_replay_plausible_calls(
        open_page: Callable[..., tuple[Any, Posts]], script: str) -> None:
    page, posts = open_page(script, calls="plausible('Queued', {props: {via: 'stub'}})")
    assert posts.wait_for("pageview")[0]["h"] is False
    assert posts.wait_for("Queued")[0]["p"] == {"via": "stub"}
    page.click("#next")
    assert urlsplit(posts.wait_for("pageview", 2)[1]["u"]).path == "/next"
    assert page.evaluate("window.plausible === window.collector")
    page.click("#outbound")  # no click tracking in these
    page.click("#tagged")
    page.wait_for_timeout(50)
    assert not posts.named("Outbound Link: Click") and not posts.named("Signup Now")


def test_hash_routes_are_pages(open_page: Callable[..., tuple[Any, Posts]]) -> None:
    page, posts = open_page("script.hash.js")
    posts.wait_for("pageview")
    page.evaluate("location.hash = '#/cart'")
    second = posts.wait_for("pageview", 2)[1]
    assert urlsplit(second["u"]).fragment == "/cart" and second["h"] == 1
    assert posts.wait_for("engagement")[0]["h"] == 1


@pytest.mark.parametrize("script", ["script.outbound-links.js",
                                    "plausible.hash.outbound-links.js",
                                    "plausible.outbound-links.hash.js"])
def test_outbound_links(open_page: Callable[..., tuple[Any, Posts]], script: str) -> None:
    page, posts = open_page(script)
    page.click("#outbound")
    assert posts.wait_for("Outbound Link: Click")[0]["p"] == {
        "url": "https://partner.example/landing"}
    page.click("#outbound", button="right")  # a context menu is no click on the link
    page.click("#outbound", button="middle")
    posts.wait_for("Outbound Link: Click", 2)
    page.wait_for_timeout(50)
    assert len(posts.named("Outbound Link: Click")) == 2
    assert not posts.named("File Download")  # downloads are not in this variant


def test_file_downloads(open_page: Callable[..., tuple[Any, Posts]], site: str) -> None:
    page, posts = open_page("script.file-downloads.js")
    with page.expect_download():
        page.click("#pdf")
    assert posts.wait_for("File Download")[0]["p"] == {"url": f"{site}/files/report.pdf"}
    with page.expect_download():
        page.click("#xyz")  # not one of Plausible's file types
    page.click("#outbound")
    page.wait_for_timeout(50)
    assert len(posts.named("File Download")) == 1 and not posts.named("Outbound Link: Click")


@pytest.mark.parametrize(("attribute", "counted"), [
    ('file-types="xyz"', ["data.xyz"]),
    ('add-file-types="xyz"', ["report.pdf", "data.xyz"]),
])
def test_file_types_attributes(open_page: Callable[..., tuple[Any, Posts]], attribute: str,
                               counted: list[str]) -> None:
    page, posts = open_page("script.file-downloads.js", attributes=f"{COUNTED} {attribute}")
    for link in ("#pdf", "#xyz"):
        with page.expect_download():
            page.click(link)
    posts.wait_for("File Download", len(counted))
    page.wait_for_timeout(50)
    assert [body["p"]["url"].rsplit("/", 1)[1] for body in posts.named("File Download")] == \
        counted


def test_our_data_flags_work_in_every_variant_that_tracks_clicks(
        open_page: Callable[..., tuple[Any, Posts]]) -> None:
    page, posts = open_page("script.tagged-events.js",
                            attributes=f"{COUNTED} data-outbound data-downloads")
    page.click("#outbound")
    with page.expect_download():
        page.click("#pdf")
    posts.wait_for("Outbound Link: Click")
    posts.wait_for("File Download")


def test_tagged_events(open_page: Callable[..., tuple[Any, Posts]], site: str) -> None:
    page, posts = open_page("script.tagged-events.js")
    page.click("#inner")  # two levels below the tagged element
    assert posts.wait_for("Signup Now")[0]["p"] == {"plan": "pro"}
    assert "$" not in posts.named("Signup Now")[0]  # revenue needs its own feature
    page.click("#tagged-link")
    assert posts.wait_for("Docs")[0]["p"] == {"url": f"{site}/docs"}
    page.click("#tagged-link", button="middle")
    posts.wait_for("Docs", 2)
    page.click("#submit")  # a click in a form is its submission, not a click
    posts.wait_for("Subscribe")
    page.click("#plain")
    page.wait_for_timeout(50)
    assert [body["n"] for body in posts.bodies if body["n"] != "engagement"] == [
        "pageview", "Signup Now", "Docs", "Docs", "Subscribe"]


def test_tagged_revenue(open_page: Callable[..., tuple[Any, Posts]]) -> None:
    page, posts = open_page("script.revenue.tagged-events.js")
    page.click("#tagged")
    assert posts.wait_for("Signup Now")[0]["$"] == {"amount": "9.5", "currency": "EUR"}


def test_revenue(open_page: Callable[..., tuple[Any, Posts]]) -> None:
    page, posts = open_page("script.revenue.js")
    page.evaluate("plausible('Purchase', {revenue: {amount: 15.99, currency: 'USD'}})")
    assert posts.wait_for("Purchase")[0]["$"] == {"amount": 15.99, "currency": "USD"}
    plain, plain_posts = open_page("script.js")
    plain.evaluate("plausible('Purchase', {revenue: {amount: 15.99, currency: 'USD'}})")
    assert "$" not in plain_posts.wait_for("Purchase")[0]


def test_manual_sends_only_the_pageviews_it_is_told_to(
        open_page: Callable[..., tuple[Any, Posts]], site: str) -> None:
    page, posts = open_page("script.manual.js")
    page.click("#next")
    page.wait_for_timeout(50)
    assert sent(page) == 0
    page.evaluate("plausible('pageview', {u: location.origin + '/search?q=shoes'})")
    assert posts.wait_for("pageview")[0]["u"] == f"{site}/search?q=shoes"
    page.evaluate("plausible('pageview')")  # the page it was on reports its engagement
    assert posts.wait_for("engagement")[0]["u"] == f"{site}/search?q=shoes"
    assert urlsplit(posts.wait_for("pageview", 2)[1]["u"]).path == "/next"


@pytest.mark.parametrize(("attributes", "path", "counted"), [
    ('data-exclude="/private/**, /drafts/*"', "/private/a/b", False),
    ('data-exclude="/private/**, /drafts/*"', "/drafts/x", False),
    ('data-exclude="/private/**, /drafts/*"', "/drafts/x/y", True),
    ('data-exclude="/private/**, /drafts/*"', "/public", True),
    ('data-include="/blog/*"', "/blog/post", True),
    ('data-include="/blog/*"', "/about", False),
])
def test_exclusions(open_page: Callable[..., tuple[Any, Posts]], attributes: str, path: str,
                    counted: bool) -> None:
    page, posts = open_page("script.exclusions.js", path=path,
                            attributes=f"{COUNTED} {attributes}")
    page.evaluate("plausible('Custom')")  # only pageviews are left out
    posts.wait_for("Custom")
    assert bool(posts.named("pageview")) == counted
    page.evaluate(HIDE)  # a page left out reports no engagement either
    if counted:
        posts.wait_for("engagement")
    else:
        page.wait_for_timeout(100)
        assert sent(page) == 1 and not posts.named("engagement")


@pytest.mark.parametrize(("script", "counted"), [("script.local.js", True),
                                                 ("script.js", False)])
def test_local_counts_development_pages(open_page: Callable[..., tuple[Any, Posts]],
                                        script: str, counted: bool) -> None:
    page, posts = open_page(script, attributes="data-allow-automation")
    page.evaluate("plausible('Custom')")
    page.wait_for_timeout(100)
    assert (sent(page) > 0) == counted


def test_pageview_props(open_page: Callable[..., tuple[Any, Posts]]) -> None:
    page, posts = open_page("script.pageview-props.js",
                            attributes=f'{COUNTED} event-author="Jane Doe" event-kind="post"')
    assert posts.wait_for("pageview")[0]["p"] == {"author": "Jane Doe", "kind": "post"}
    page.evaluate("plausible('Share', {props: {kind: 'tweet', to: 'x'}})")
    assert posts.wait_for("Share")[0]["p"] == {"author": "Jane Doe", "kind": "tweet", "to": "x"}


def test_everything_at_once(open_page: Callable[..., tuple[Any, Posts]], site: str) -> None:
    name = ("plausible.compat.exclusions.file-downloads.hash.local.manual.outbound-links."
            "pageleave.pageview-props.revenue.tagged-events.js")
    page, posts = open_page(name, attributes='data-allow-automation event-author="Jane"')
    page.evaluate("plausible('pageview', {revenue: {amount: 1, currency: 'EUR'}})")
    first = posts.wait_for("pageview")[0]
    assert (first["h"], first["p"], first["$"]) == (1, {"author": "Jane"},
                                                   {"amount": 1, "currency": "EUR"})
    page.click("#tagged")
    page.click("#outbound")
    assert posts.wait_for("Signup Now")[0]["$"] == {"amount": "9.5", "currency": "EUR"}
    posts.wait_for("Outbound Link: Click")
