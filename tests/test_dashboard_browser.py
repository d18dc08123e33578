"""The built-in dashboard in a real Chromium, against a collector with demo data.

One database, one collector and one browser for the module: the demo generator
writes 40 days of traffic for a site in Asia/Kolkata (+05:30, so its days are not
UTC's) with two goals; a few requests go through ``POST /api/event`` for what demo
data lacks (a page path and a property value written as markup, a custom event with
props, rare rows, and bots, opt-outs, an excluded path and a prefetch for the
Filtered-out panel). Every number the dashboard shows is checked against the query
API's answer to the very query the panel posted (its ``data-query``).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette

from collector.app import create_app
from collector.drops import REASONS
from collector.reports.auth import SHARE, create_key
from collector.reports.demo import generate
from collector.reports.goals import EVENT, add_goal
from collector.sites import add_site, set_exclusions
from collector.storage import Store
from tests.browser_support import BROWSER_MARKS, DESKTOP_USER_AGENT, BackgroundServer
from tests.conftest import app_settings
from tests.npm_packages import PinnedPackage, pinned_file

pytestmark = BROWSER_MARKS
sync_api = pytest.importorskip("playwright.sync_api")

SITE = "dashboard.example"
TIMEZONE = "Asia/Kolkata"
DEMO_EVENTS = 300_000
DEMO_DAYS = 40
CAMPAIGN = "browser-test"  # utm_source of the traffic sent through ingest
SCRIPT_PATH = "/<script>alert(1)</script>"
MARKUP_PROPERTY = "<img src=x onerror=alert(2)>"
SCRIPT_VISITORS = 3  # fewer than a share link's k (5): folded there, named for a key
DROPPED = {"bot": 6, "opt-out": 2, "excluded": 1, "prefetch": 1}
PUBLIC_K = 5  # the default public threshold
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# A selector, not a script: the dashboard's policy forbids the eval a predicate would need.
READY = "main#dashboard[data-ready='1']"
ROW_PANELS = ("sources", "pages", "locations", "devices", "languages", "isps", "goals")
AXE = PinnedPackage("axe-core", "4.14.1",
                    "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtu"
                    "FooJpZe37OgudVGtQ==")


# ---------------------------------------------------------------- the collector and its data

@dataclass(frozen=True)
class Deployment:
    url: str
    app: Starlette
    key: str  # an API key of SITE
    share: str  # a share token of SITE
    client: httpx.Client

    def post(self, path: str, body: Any, token: str | None = None) -> Any:
        response = self.client.post(path, json=body,
                                    headers={"Authorization": f"Bearer {token or self.key}"})
        assert response.status_code == 200, response.text
        return response.json()

    def csv(self, body: Any) -> bytes:
        response = self.client.post("/api/v2/query", json=body, headers={
            "Authorization": f"Bearer {self.key}", "Accept": "text/csv"})
        assert response.status_code == 200, response.text
        return response.content

    def realtime(self) -> int:
        response = self.client.get("/api/v1/stats/realtime/visitors", params={"site_id": SITE},
                                   headers={"Authorization": f"Bearer {self.key}"})
        assert response.status_code == 200, response.text
        return int(response.json())


@pytest.fixture(scope="module")
def deployment(store: Store, engine_url: str) -> Iterator[Deployment]:
    add_site(store, SITE, timezone=TIMEZONE)
    set_exclusions(store, SITE, (), ("/admin/*",))
    add_goal(store, SITE, EVENT, "Signup")  # demo visits sign up
    add_goal(store, SITE, EVENT, "Purchase")  # only the ingest traffic buys
    generate(store, SITE, DEMO_EVENTS, DEMO_DAYS)
    key, share = create_key(store, SITE), create_key(store, SITE, SHARE)
    app = create_app(app_settings(engine_url), store)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url,
                                                       timeout=30) as client:
        _send_traffic(client)
        app.state.writer.flush()
        assert app.state.drops.flush()
        app.state.writer.flush()
        yield Deployment(server.url, app, key, share, client)


def _visitor_agent(number: int) -> str:
    """A desktop Chrome of its own: one more visitor (the visitor hash covers the agent)."""
    return DESKTOP_USER_AGENT.replace("126.0.0.0", f"126.0.{number}.0")


def _send_traffic(client: httpx.Client) -> None:
    def send(path: str, agent: str, name: str = "pageview", props: Any = None,
             **headers: str) -> str | None:
        body = {"n": name, "u": f"https://{SITE}{path}", "d": SITE, "p": props}
        response = client.post("/api/event", content=json.dumps(body), headers={
            "User-Agent": agent, "Content-Type": "text/plain", **headers})
        assert response.status_code == 202, response.text
        reason: str | None = response.headers.get("x-collector-dropped")
        return reason

    tagged = f"?utm_source={CAMPAIGN}"
    for number in range(SCRIPT_VISITORS):
        assert send(SCRIPT_PATH + tagged, _visitor_agent(number)) is None
    buyer = _visitor_agent(SCRIPT_VISITORS)
    assert send("/checkout" + tagged, buyer) is None
    assert send("/checkout" + tagged, buyer, "Purchase", {"tier": MARKUP_PROPERTY}) is None
    dropped = {"bot": lambda: send("/", GOOGLEBOT),
               "opt-out": lambda: send("/", buyer, DNT="1"),
               "excluded": lambda: send("/admin/users", buyer),
               "prefetch": lambda: send("/", buyer, Purpose="prefetch")}
    for reason, count in DROPPED.items():
        assert [dropped[reason]() for _ in range(count)] == [reason] * count


# ---------------------------------------------------------------- the browser

@dataclass
class Browsing:
    """The contexts one test opens, and the URL of every request their pages made."""

    browser: Any
    deployment: Deployment
    requested: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    def page(self, **options: Any) -> Any:
        context = self.browser.new_context(user_agent=DESKTOP_USER_AGENT, **options)
        context.on("request", lambda request: self.requested.append(request.url))
        self.contexts.append(context)
        return context.new_page()

    def signed_in(self, view: dict[str, str] | None = None, **options: Any) -> Any:
        """A page signed in with the API key, on the dashboard showing ``view`` (URL params)."""
        page = self.page(**options)
        sign_in(page, self.deployment.url, self.deployment.key)
        if view:
            open_view(page, f"{self.deployment.url}/dashboard/{SITE}", view)
        return page


@pytest.fixture
def browsing(browser: Any, deployment: Deployment) -> Iterator[Browsing]:
    opened = Browsing(browser, deployment)
    yield opened
    for context in opened.contexts:
        context.close()


def sign_in(page: Any, url: str, key: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#key", key)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_url(f"{url}/dashboard/{SITE}?*")
    wait_ready(page)


def wait_ready(page: Any) -> None:
    page.wait_for_selector(READY, state="attached")


def open_view(page: Any, address: str, view: dict[str, str]) -> None:
    page.goto(f"{address}?{urlencode(view)}")
    wait_ready(page)


def after(page: Any, action: Callable[[], object]) -> None:
    """Run ``action`` (a click, a key...) and wait until every part has loaded again."""
    action()
    wait_ready(page)


def panel(page: Any, panel_id: str) -> Any:
    return page.locator(f"[data-panel='{panel_id}']")


def url_view(page: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query, keep_blank_values=True)


# Everything the dashboard shows, as the raw numbers it keeps beside the formatted text.
SHOWN = """() => {
  const number = (text) => (text === undefined || text === "" ? null : Number(text));
  const parts = {};
  for (const node of document.querySelectorAll("[data-panel]")) {
    const part = { state: node.dataset.state, tab: node.dataset.tab || null,
                   query: node.dataset.query ? JSON.parse(node.dataset.query) : null };
    if (node.dataset.panel === "top-stats") {
      part.stats = {};
      part.changes = {};
      for (const stat of node.querySelectorAll("[data-stat]")) {
        part.stats[stat.dataset.stat] = number(stat.querySelector(".stat-value").dataset.raw);
        part.changes[stat.dataset.stat] = number(stat.querySelector(".stat-change").dataset.raw);
      }
    } else if (node.dataset.panel === "timeseries") {
      const values = node.querySelector("#chart").dataset.values;
      part.values = values ? JSON.parse(values) : null;
    } else {
      part.rows = [...node.querySelectorAll("tbody tr[data-value]")].map((row) => [
        row.dataset.value,
        Object.fromEntries([...row.querySelectorAll("td[data-metric]")].map(
          (cell) => [cell.dataset.metric, number(cell.dataset.raw)]))]);
    }
    parts[node.dataset.panel] = part;
  }
  return parts;
}"""


def shown(page: Any) -> dict[str, dict[str, Any]]:
    parts: dict[str, dict[str, Any]] = page.evaluate(SHOWN)
    return parts


def numbers(part: dict[str, Any]) -> dict[str, Any]:
    return {name: part[name] for name in ("stats", "changes", "values", "rows") if name in part}


def api_numbers(deployment: Deployment, panel_id: str, query: dict[str, Any],
                token: str | None = None) -> dict[str, Any]:
    """What the panel should show for ``query``, from the API's own answer to it."""
    if panel_id == "filtered":
        answer = deployment.post("/api/v2/drops", query, token)
        return {"rows": [[row["reason"], {"count": row["count"]}] for row in answer["results"]]}
    answer = deployment.post("/api/v2/query", query, token)
    if panel_id == "top-stats":
        row = answer["results"][0]
        changes = row["comparison"]["change"] if "comparison" in row else [None] * len(
            query["metrics"])
        return {"stats": dict(zip(query["metrics"], row["metrics"])),
                "changes": dict(zip(query["metrics"], changes))}
    if panel_id == "timeseries":
        by_label = {row["dimensions"][0]: row["metrics"][0] for row in answer["results"]}
        return {"values": [by_label[label] if label in by_label else 0
                           for label in answer["meta"]["time_labels"]]}
    return {"rows": [[row["dimensions"][0], dict(zip(query["metrics"], row["metrics"]))]
                     for row in answer["results"]]}


def assert_matches_api(page: Any, deployment: Deployment, token: str | None = None,
                       only: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Every part (or those in ``only``) is loaded and shows the API's numbers for its query."""
    parts = shown(page)
    assert set(parts) == {"top-stats", "timeseries", *ROW_PANELS, "filtered"}
    for panel_id, part in parts.items():
        if only and panel_id not in only:
            continue
        assert part["state"] == "ready", f"{panel_id} is {part['state']}"
        expected = api_numbers(deployment, panel_id, part["query"], token)
        if panel_id == "top-stats":  # a stat not asked (under a page filter) shows a dash
            for name in part["stats"].keys() - set(part["query"]["metrics"]):
                expected["stats"][name] = expected["changes"][name] = None
        if panel_id == "filtered":  # a fixed list of reasons: compared as a mapping
            assert dict(part["rows"]) == dict(expected["rows"]), panel_id
        else:
            assert numbers(part) == expected, f"{panel_id} ({part['tab']})"
    return parts


def query_parts(parts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {panel_id: part["query"] for panel_id, part in parts.items()}


def local_today() -> date:
    return datetime.now(ZoneInfo(TIMEZONE)).date()


# ---------------------------------------------------------------- sign-in

def test_sign_in_refuses_a_wrong_key_then_sets_one_strict_http_only_cookie(
        browsing: Browsing, deployment: Deployment) -> None:
    page = browsing.page()
    page.goto(f"{deployment.url}/login")
    page.fill("#key", "ck_000000000000_not-a-real-secret")
    with page.expect_response(lambda response: response.request.method == "POST") as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 401
    sync_api.expect(page.locator("#sign-in-error")).to_be_visible()
    assert urlsplit(page.url).path == "/login"
    assert page.context.cookies() == []

    page.fill("#key", deployment.key)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_url(f"{deployment.url}/dashboard/{SITE}?*")
    wait_ready(page)
    cookies = page.context.cookies()
    assert [(cookie["name"], cookie["httpOnly"], cookie["sameSite"], cookie["secure"])
            for cookie in cookies] == [("collector_session", True, "Strict", False)]
    assert deployment.key not in cookies[0]["value"]  # the cookie is not the key
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it


# ---------------------------------------------------------------- the numbers

def test_every_panel_and_tab_shows_the_query_apis_numbers(browsing: Browsing,
                                                          deployment: Deployment) -> None:
    page = browsing.signed_in()
    before = deployment.realtime()
    page.reload()
    wait_ready(page)
    parts = assert_matches_api(page, deployment)
    # The default view: the last 30 days, in the site's timezone, by day.
    assert {panel_id: query["date_range"] for panel_id, query in query_parts(parts).items()} \
        == dict.fromkeys(parts, "30d")
    assert parts["timeseries"]["query"]["dimensions"] == ["time:day"]
    assert len(parts["timeseries"]["values"]) == 30
    today = local_today()
    sync_api.expect(page.locator("#range-text")).to_contain_text(
        f"{today.day} {today:%b} {today.year}")
    sync_api.expect(page.locator("footer")).to_contain_text(f"Times in {TIMEZONE}")
    goals = {value: metrics for value, metrics in parts["goals"]["rows"]}
    assert list(goals) == ["Signup", "Purchase"]
    assert (goals["Purchase"]["visitors"], goals["Purchase"]["events"]) == (1, 1)

    # Realtime: demo visits age out of its five minutes, so it lies between two readings.
    page.wait_for_selector("#realtime[data-raw]", state="attached")
    current = int(page.get_attribute("#realtime", "data-raw"))
    assert before >= current >= deployment.realtime() and current >= 1

    unnamed: list[str] = []  # gathered, so that every tab is checked before failing
    for panel_id in ROW_PANELS:
        tabs = panel(page, panel_id).locator("[role=tab]")
        dimensions = [tabs.nth(index).get_attribute("data-tab") for index in range(tabs.count())]
        for dimension in dimensions:
            tab = panel(page, panel_id).locator(f"[role=tab][data-tab='{dimension}']")
            if tab.get_attribute("aria-selected") != "true":
                after(page, tab.click)
            assert tab.get_attribute("aria-selected") == "true"
            part = assert_matches_api(page, deployment, only=(panel_id,))[panel_id]
            assert part["tab"] == dimension
            assert part["rows"], f"{panel_id} {dimension} shows no rows"
            if dimension != dimensions[0]:
                assert url_view(page)[f"tab.{panel_id}"] == [dimension]
            # Every row shows its value as text: a blank value must not be an empty button.
            unnamed += [f"{panel_id} {dimension}: the row of {value!r}" for value, text in zip(
                [value for value, _ in part["rows"] if value != "(other)"],
                panel(page, panel_id).locator("button.row-filter").all_inner_texts())
                if not text.strip()]

    assert unnamed == [], "row filters showing no text:\n" + "\n".join(unnamed)

    # The property tab starts on the most common key and offers the others.
    assert shown(page)["goals"]["query"]["dimensions"] == ["event:props:plan"]
    after(page, lambda: panel(page, "goals").locator("select.property-picker").select_option(
        "tier"))
    goals = assert_matches_api(page, deployment, only=("goals",))["goals"]
    assert [MARKUP_PROPERTY, {"visitors": 1, "events": 1}] in goals["rows"]
    assert url_view(page)["property"] == ["tier"]


def test_the_filtered_out_panel_counts_what_ingest_dropped(browsing: Browsing,
                                                           deployment: Deployment) -> None:
    page = browsing.signed_in()
    filtered = assert_matches_api(page, deployment, only=("filtered",))["filtered"]
    assert dict(filtered["rows"]) == {reason: {"count": DROPPED.get(reason, 0)}
                                      for reason in REASONS}
    assert filtered["query"] == {"site_id": SITE, "date_range": "30d"}


def test_a_click_on_a_source_filters_every_panel_and_the_url(browsing: Browsing,
                                                             deployment: Deployment) -> None:
    page = browsing.signed_in({"tab.sources": "visit:source"})
    google = panel(page, "sources").locator("tr[data-value='Google'] button.row-filter")
    after(page, google.click)

    chips = page.locator("#filters li.chip")
    sync_api.expect(chips).to_have_count(1)
    assert (chips.get_attribute("data-dimension"), chips.get_attribute("data-value")) == (
        "visit:source", "Google")
    assert url_view(page)["f.visit:source"] == ["Google"]
    parts = assert_matches_api(page, deployment)
    for panel_id, query in query_parts(parts).items():
        if panel_id != "filtered":  # counts of dropped requests know no sources
            assert query["filters"] == [["is", "visit:source", ["Google"]]], panel_id
    unfiltered = deployment.post("/api/v2/query", {**parts["top-stats"]["query"], "filters": []})
    assert parts["top-stats"]["stats"]["visitors"] < unfiltered["results"][0]["metrics"][0]

    page.reload()  # the view is in the URL: a bookmark opens it again
    wait_ready(page)
    sync_api.expect(chips).to_have_count(1)
    assert query_parts(assert_matches_api(page, deployment)) == query_parts(parts)

    after(page, chips.locator("button").click)
    sync_api.expect(chips).to_have_count(0)
    assert "f.visit:source" not in url_view(page)
    parts = assert_matches_api(page, deployment)
    assert all(query.get("filters", []) == [] for query in query_parts(parts).values())


def test_a_range_change_updates_everything(browsing: Browsing, deployment: Deployment) -> None:
    page = browsing.signed_in()
    after(page, lambda: page.select_option("#period", "7d"))
    assert url_view(page)["period"] == ["7d"]
    parts = assert_matches_api(page, deployment)
    assert {query["date_range"] for query in query_parts(parts).values()} == {"7d"}
    assert len(parts["timeseries"]["values"]) == 7

    page.select_option("#period", "custom")
    sync_api.expect(page.locator("#range-from")).to_be_visible()
    first, last = local_today() - timedelta(days=20), local_today() - timedelta(days=11)
    page.fill("#range-from", first.isoformat())
    page.fill("#range-to", last.isoformat())
    after(page, lambda: page.click("#range-apply"))
    view = url_view(page)
    assert (view["period"], view["from"], view["to"]) == (
        ["custom"], [first.isoformat()], [last.isoformat()])
    parts = assert_matches_api(page, deployment)
    assert {tuple(query["date_range"]) for query in query_parts(parts).values()} == {
        (first.isoformat(), last.isoformat())}
    assert len(parts["timeseries"]["values"]) == 10

    after(page, lambda: page.click("[data-interval=week]"))
    assert url_view(page)["interval"] == ["week"]
    timeseries = assert_matches_api(page, deployment, only=("timeseries",))["timeseries"]
    assert timeseries["query"]["dimensions"] == ["time:week"]
    assert page.get_attribute("[data-interval=week]", "aria-pressed") == "true"


def test_comparison_shows_the_apis_changes(browsing: Browsing, deployment: Deployment) -> None:
    page = browsing.signed_in()
    assert set(shown(page)["top-stats"]["changes"].values()) == {None}
    after(page, lambda: page.check("#compare"))
    assert url_view(page)["compare"] == ["1"]
    stats = assert_matches_api(page, deployment, only=("top-stats", "timeseries"))["top-stats"]
    assert stats["query"]["include"]["comparison"] == "previous_period"
    assert any(change for change in stats["changes"].values())  # demo traffic grew
    for metric, change in stats["changes"].items():
        text = page.locator(f"[data-stat='{metric}'] .stat-change").inner_text()
        assert (str(abs(change)) in text) if change is not None else text == "", metric
    # The chart draws the previous period too, dashed.
    sync_api.expect(page.locator("#chart svg path.line")).to_have_count(2)
    sync_api.expect(page.locator("#chart svg path.dashed")).to_have_count(1)


def test_csv_download_is_the_apis_csv_of_the_panel_query(browsing: Browsing,
                                                         deployment: Deployment) -> None:
    page = browsing.signed_in({"f.visit:device": "Desktop"})
    for panel_id in ("pages", "sources"):
        query = shown(page)[panel_id]["query"]
        with page.expect_download() as started:
            panel(page, panel_id).locator("button.csv").click()
        download = started.value
        content = Path(download.path()).read_bytes()
        assert download.suggested_filename.startswith(SITE)
        assert download.suggested_filename.endswith(".csv")
        # The panel's query, for every row the API gives (10,000 at most), not the 10 shown.
        assert content == deployment.csv({**query, "pagination": {"limit": 10000, "offset": 0}})
        lines = content.decode().splitlines()
        assert lines[0] == ",".join([*query["dimensions"], *query["metrics"]])
        if panel_id == "pages":
            assert len(lines) > 1 + 10


# ---------------------------------------------------------------- share links

def test_a_share_link_needs_no_sign_in_and_folds_rare_rows(browsing: Browsing,
                                                          deployment: Deployment) -> None:
    page = browsing.page()
    response = page.goto(f"{deployment.url}/share/{deployment.share}")
    assert "set-cookie" not in response.headers
    wait_ready(page)
    sync_api.expect(page.locator("#share-notice")).to_contain_text(
        f"fewer than {PUBLIC_K} visitors")
    sync_api.expect(page.locator("form.sign-out")).to_have_count(0)
    parts = assert_matches_api(page, deployment, deployment.share)
    # Counts a public link may not show are null; bots were frequent enough (and noised).
    assert dict(parts["filtered"]["rows"])["bot"]["count"] is not None
    assert dict(parts["filtered"]["rows"])["opt-out"] == {"count": None}

    # The ingest traffic alone: too few visitors per page to be named in public.
    open_view(page, f"{deployment.url}/share/{deployment.share}", {"f.visit:utm_source": CAMPAIGN})
    parts = assert_matches_api(page, deployment, deployment.share)
    assert [value for value, _ in parts["pages"]["rows"]] == ["(other)"]
    other = panel(page, "pages").locator("tr[data-value='(other)']")
    sync_api.expect(other.locator("span.other")).to_have_text("(other)")
    sync_api.expect(other.locator("button")).to_have_count(0)  # not a filter
    # The same query with the API key names the rare rows.
    named = api_numbers(deployment, "pages", parts["pages"]["query"])
    assert sorted(value for value, _ in named["rows"]) == sorted(["/checkout", SCRIPT_PATH])
    assert page.context.cookies() == []


# ---------------------------------------------------------------- safety

def test_values_from_the_data_are_shown_as_text(browsing: Browsing,
                                                deployment: Deployment) -> None:
    page = browsing.page()
    dialogs: list[str] = []

    def record(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    sign_in(page, deployment.url, deployment.key)
    open_view(page, f"{deployment.url}/dashboard/{SITE}", {
        "f.visit:utm_source": CAMPAIGN, "tab.goals": "props", "property": "tier"})
    script_row = panel(page, "pages").locator("tbody tr").filter(has_text="alert(1)")
    assert script_row.get_attribute("data-value") == SCRIPT_PATH
    sync_api.expect(script_row.locator("button.row-filter")).to_have_text(SCRIPT_PATH)
    sync_api.expect(script_row.locator("button.row-filter")).to_be_visible()
    markup_row = panel(page, "goals").locator("tbody tr").filter(has_text="alert(2)")
    sync_api.expect(markup_row.locator("button.row-filter")).to_have_text(MARKUP_PROPERTY)

    after(page, script_row.locator("button.row-filter").click)
    sync_api.expect(page.locator("#filters li.chip").last).to_contain_text(SCRIPT_PATH)
    assert url_view(page)["f.event:page"] == [SCRIPT_PATH]
    assert_matches_api(page, deployment)
    page.reload()  # the markup comes back from the URL too
    wait_ready(page)
    sync_api.expect(page.locator("#filters li.chip").last).to_contain_text(SCRIPT_PATH)
    # Nothing ran and nothing was inserted: the page's one script and no image.
    assert dialogs == []
    assert page.evaluate("[...document.querySelectorAll('script')].map((s) => s.src)") == [
        page.evaluate("document.querySelector('script[type=module]').src")]
    assert page.locator("img").count() == 0
    assert page.evaluate("document.body.innerHTML.includes('<script>alert')") is False


def test_no_request_leaves_for_another_host(browsing: Browsing, deployment: Deployment) -> None:
    page = browsing.signed_in({"tab.devices": "visit:os"})
    after(page, lambda: page.check("#compare"))
    after(page, panel(page, "sources").locator("button.row-filter").first.click)
    page.hover("#chart svg")
    with page.expect_download():
        panel(page, "pages").locator("button.csv").click()
    after(page, lambda: page.select_option("#period", "all"))
    page.goto(f"{deployment.url}/share/{deployment.share}")
    wait_ready(page)
    page.goto(f"{deployment.url}/share/not-a-token")

    origin = deployment.url + "/"
    elsewhere = [url for url in browsing.requested
                 if not (url.startswith(origin) or url.startswith(("data:", "blob:")))]
    assert elsewhere == []
    assert len(browsing.requested) > 20


def test_pages_carry_a_strict_csp_and_no_inline_script(browsing: Browsing,
                                                      deployment: Deployment) -> None:
    page = browsing.page()
    page.add_init_script("""window.__violations = [];
      document.addEventListener("securitypolicyviolation",
        (event) => window.__violations.push(event.effectiveDirective + " " + event.blockedURI));""")
    responses = {"sign-in": page.goto(f"{deployment.url}/login")}
    sign_in(page, deployment.url, deployment.key)
    responses["dashboard"] = page.goto(f"{deployment.url}/dashboard/{SITE}")
    wait_ready(page)
    assert page.evaluate("window.__violations") == []  # the dashboard keeps its own policy
    # A script written into the page, as an injected value would be, does not run.
    assert page.evaluate("""() => { const script = document.createElement("script");
        script.textContent = "window.__ran = true"; document.head.append(script);
        return window.__ran === undefined; }""") is True
    assert any(violation.startswith("script-src") for violation in page.evaluate(
        "window.__violations"))
    responses["share"] = page.goto(f"{deployment.url}/share/{deployment.share}")
    wait_ready(page)

    for name, response in responses.items():
        headers = response.headers
        policy = dict((part.strip().split(" ", 1) + [""])[:2]
                      for part in headers["content-security-policy"].split(";"))
        assert policy["default-src"] == "'none'", name
        assert policy["script-src"] == "'self'", name
        assert policy["frame-ancestors"] == "'none'", name
        assert "unsafe" not in headers["content-security-policy"], name
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["referrer-policy"] in ("same-origin", "no-referrer"), name
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    assert page.evaluate("""[...document.querySelectorAll('*')].flatMap((node) =>
        [...node.attributes].map((attribute) => attribute.name))
        .filter((name) => name.startsWith('on'))""") == []


# ---------------------------------------------------------------- layout and input

def _png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit, non-interlaced PNG (Chromium's screenshots)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, compressed = 8, b""
    width = height = channels = 0
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, "unexpected PNG format"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            compressed += body
    raw = zlib.decompress(compressed)
    stride = width * channels
    rows, previous = [], bytes(stride)
    for index in range(height):
        start = index * (stride + 1)
        line = _unfilter(raw[start], raw[start + 1:start + 1 + stride], previous, channels)
        rows.append(line)
        previous = line
    return width, height, rows


def _unfilter(kind: int, line: bytes, above: bytes, step: int) -> bytes:
    """One scanline with its PNG filter undone (fast paths for None, Sub and Up)."""
    if kind == 0:
        return line
    if kind == 1:  # Sub: a running sum per channel, modulo 256
        out = bytearray(len(line))
        for channel in range(step):
            out[channel::step] = bytes(total & 255 for total in accumulate(line[channel::step]))
        return bytes(out)
    if kind == 2:  # Up: bytewise addition without carries, on the whole line at once
        size = len(line)
        low, high = int.from_bytes(b"\x7f" * size, "big"), int.from_bytes(b"\x80" * size, "big")
        a, b = int.from_bytes(line, "big"), int.from_bytes(above, "big")
        return (((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(size, "big")
    out = bytearray(line)
    for index in range(len(out)):
        left = out[index - step] if index >= step else 0
        up = above[index]
        if kind == 3:
            out[index] = (out[index] + (left + up) // 2) & 255
            continue
        corner = above[index - step] if index >= step else 0
        estimate = left + up - corner
        distances = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
        predictor = left if distances[0] <= distances[1] and distances[0] <= distances[2] \
            else up if distances[1] <= distances[2] else corner
        out[index] = (out[index] + predictor) & 255
    return bytes(out)


def colour_counts(png: bytes) -> tuple[int, int, Counter[tuple[int, int, int]]]:
    width, height, rows = _png_rows(png)
    step = len(rows[0]) // width
    counts: Counter[tuple[int, int, int]] = Counter()
    for row in rows:
        counts.update(zip(row[0::step], row[1::step], row[2::step]))
    return width, height, counts


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [390, 1440])
def test_screenshots_at_phone_and_desktop_widths_are_not_blank(
        browsing: Browsing, tmp_path: Path, width: int, scheme: str) -> None:
    page = browsing.signed_in(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page.wait_for_selector("#realtime[data-raw]", state="attached")
    if width == 390:  # a phone scrolls down, never sideways
        assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    path = tmp_path / f"dashboard-{width}-{scheme}.png"
    page.screenshot(path=str(path))
    shot_width, shot_height, counts = colour_counts(path.read_bytes())
    assert (shot_width, shot_height) == (width, 900)
    commonest, most = counts.most_common(1)[0]
    assert len(counts) >= 64, f"{path}: only {len(counts)} colours"
    assert most / (shot_width * shot_height) < 0.9, f"{path}: {commonest} almost everywhere"
    # The page's own background is in the picture (the decoding is right), and it follows
    # the system's scheme: light, or dark.
    background = tuple(json.loads("[" + page.evaluate(
        "getComputedStyle(document.body).backgroundColor").removeprefix("rgb(")[:-1] + "]"))
    assert counts[background] > 0.02 * shot_width * shot_height, (path, background)
    brightness = sum(commonest) / 3
    assert brightness > 200 if scheme == "light" else brightness < 60, (scheme, commonest)


def test_tabs_and_row_filters_work_from_the_keyboard(browsing: Browsing,
                                                     deployment: Deployment) -> None:
    page = browsing.signed_in()
    focused_tab = "document.activeElement.closest(\"[data-panel='sources']\") && " \
                  "document.activeElement.getAttribute('role') === 'tab'"
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate(focused_tab):
            break
    else:
        pytest.fail("Tab never reached the sources panel's tabs")
    assert page.evaluate("document.activeElement.getAttribute('aria-selected')") == "true"
    sources = panel(page, "sources")

    after(page, lambda: page.keyboard.press("ArrowRight"))
    assert sources.get_attribute("data-tab") == "visit:source"
    assert page.evaluate("document.activeElement.dataset.tab") == "visit:source"
    after(page, lambda: page.keyboard.press("ArrowLeft"))
    assert sources.get_attribute("data-tab") == "visit:channel"
    sources.locator("[role=tab][data-tab='visit:utm_source']").focus()
    after(page, lambda: page.keyboard.press("Enter"))
    assert sources.get_attribute("data-tab") == "visit:utm_source"
    assert_matches_api(page, deployment, only=("sources",))

    # From the selected tab, Tab leads into its rows; Enter on a row filters by it.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('row-filter')")
    value = page.evaluate("document.activeElement.closest('tr').dataset.value")
    after(page, lambda: page.keyboard.press("Enter"))
    chip = page.locator("#filters li.chip")
    assert (chip.get_attribute("data-dimension"), chip.get_attribute("data-value")) == (
        "visit:utm_source", value)
    chip.locator("button").focus()
    after(page, lambda: page.keyboard.press("Enter"))
    sync_api.expect(chip).to_have_count(0)


def test_the_chart_shows_exact_values_on_hover_and_from_the_keyboard(
        browsing: Browsing, deployment: Deployment) -> None:
    page = browsing.signed_in()
    values = assert_matches_api(page, deployment, only=("timeseries",))["timeseries"]["values"]
    svg = page.locator("#chart svg")
    box = svg.bounding_box()
    tooltip = page.locator("#chart .tooltip")
    plot_left, plot_width = 56, box["width"] - 56 - 16  # chart.js margins
    middle = len(values) // 2
    page.mouse.move(box["x"] + plot_left + middle * plot_width / (len(values) - 1),
                    box["y"] + box["height"] / 2)
    sync_api.expect(tooltip).to_be_visible()
    assert tooltip.get_attribute("data-index") == str(middle)
    sync_api.expect(tooltip).to_contain_text(f"Unique visitors: {values[middle]:,}")

    svg.focus()
    for key, index in (("Home", 0), ("ArrowRight", 1), ("End", len(values) - 1)):
        page.keyboard.press(key)
        assert tooltip.get_attribute("data-index") == str(index), key
        sync_api.expect(tooltip).to_contain_text(f"Unique visitors: {values[index]:,}")


# ---------------------------------------------------------------- accessibility

@pytest.fixture(scope="module")
def axe_source(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> str:
    return pinned_file(AXE, "package/axe.min.js", request, tmp_path_factory).decode()


def serious_violations(page: Any, axe_source: str) -> list[str]:
    page.add_script_tag(content=axe_source)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{violation['id']} ({violation['impact']}): {violation['help']}\n"
            + "\n".join(f"    {' '.join(node['target'])}: "
                        + node["failureSummary"].replace("\n", "\n      ")
                        for node in violation["nodes"])
            for violation in results["violations"]
            if violation["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing_serious(browsing: Browsing, deployment: Deployment,
                                   axe_source: str, scheme: str) -> None:
    # bypass_csp for this context only: axe is injected as an inline script, which the
    # dashboard's policy (script-src 'self') rightly refuses.
    page = browsing.page(bypass_csp=True, color_scheme=scheme)
    found: dict[str, list[str]] = {}
    page.goto(f"{deployment.url}/login")
    found["sign-in"] = serious_violations(page, axe_source)
    page.fill("#key", "ck_000000000000_wrong")
    with page.expect_navigation():
        page.click("button[type=submit]")
    found["sign-in error"] = serious_violations(page, axe_source)
    sign_in(page, deployment.url, deployment.key)
    open_view(page, f"{deployment.url}/dashboard/{SITE}", {
        "compare": "1", "tab.sources": "visit:referrer", "tab.goals": "props"})
    found["dashboard"] = serious_violations(page, axe_source)
    open_view(page, f"{deployment.url}/share/{deployment.share}",
              {"f.visit:utm_source": CAMPAIGN})
    found["share"] = serious_violations(page, axe_source)
    report = "\n".join(f"{name}: {violation}" for name, violations in found.items()
                       for violation in violations)
    assert not report, f"axe-core {AXE.version}, {scheme}:\n{report}"
