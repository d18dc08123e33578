"""``POST /api/event`` and ``GET /pixel.gif`` end to end, read back from ClickHouse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from collector.reports.auth import create_key
from collector.sites import add_site, remove_site, set_exclusions
from collector.storage import Store
from tests.conftest import CHROME_UA, flush, running_app

HEADERS = {"User-Agent": CHROME_UA, "Content-Type": "text/plain",
           "Accept-Language": "de-DE,de;q=0.9,en;q=0.8"}


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str) -> TestClient:
    with running_app(store, engine_url) as running:
        yield running


def post(client: TestClient, body: object, **headers: str) -> object:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/event", content=raw, headers={**HEADERS, **headers})


def rows(store: Store, site: str, columns: str = "name, pathname") -> list[tuple[object, ...]]:
    return store.rows(f"SELECT {columns} FROM events WHERE site = {{s:String}} "
                      "ORDER BY timestamp, pathname", {"s": site})


def test_a_pageview_is_stored_with_its_dimensions(client: TestClient, store: Store) -> None:
    response = post(client, {"n": "pageview", "u": "https://www.one.test/pricing?utm_source=news"
                             "&utm_campaign=spring&q=secret", "d": "one.test",
                             "r": "https://www.google.de/search?q=x", "w": 1280})
    assert response.status_code == 202
    assert response.text == "ok"
    assert "x-collector-dropped" not in response.headers
    assert response.headers["access-control-allow-origin"] == "*"
    flush(client)
    (row,) = rows(store, "one.test", "name, hostname, pathname, referrer, referrer_medium, "
                  "utm_source, utm_campaign, browser, device, screen, language, visitor != 0, "
                  "visit != 0, interactive")
    assert row == ("pageview", "one.test", "/pricing", "google.de/search", "search", "news",
                   "spring", "Chrome", "Desktop", "laptop", "de", True, True, 1)


def test_custom_event_with_props_and_plausible_long_names(client: TestClient,
                                                          store: Store) -> None:
    response = post(client, {"name": "Signup", "url": "https://two.test/join", "domain": "two.test",
                             "props": {"plan": "pro", "seats": 3}, "interactive": False})
    assert response.status_code == 202
    flush(client)
    assert rows(store, "two.test", "name, prop_keys, prop_values, interactive") == [
        ("Signup", ["plan", "seats"], ["pro", "3"], 0)]


def test_multi_site_fan_out(client: TestClient, store: Store) -> None:
    post(client, {"n": "pageview", "u": "https://fan.test/x", "d": "fan-a.test,fan-b.test"})
    flush(client)
    assert rows(store, "fan-a.test") == [("pageview", "/x")]
    assert rows(store, "fan-b.test") == [("pageview", "/x")]


@pytest.mark.parametrize(("body", "field"), [
    ("", "body"), ("{", "body"), ("[]", "body"),
    ({"u": "https://bad.test/", "d": "bad.test"}, "name"),
    ({"n": "pageview", "d": "bad.test"}, "url"),
    ({"n": "pageview", "u": "/relative"}, "domain"),
    ({"n": "pageview", "u": "data:text/html,hi", "d": "bad.test"}, "url"),
    ({"n": "engagement", "u": "https://bad.test/", "d": "bad.test"}, "engagement_time"),
])
def test_malformed_input_gets_400_naming_the_field_and_writes_nothing(
        client: TestClient, store: Store, body: object, field: str) -> None:
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert response.json()["error"]
    flush(client)
    assert rows(store, "bad.test") == []


def test_body_over_the_limit_gets_413(client: TestClient) -> None:
    response = post(client, {"n": "pageview", "u": "https://big.test/", "d": "big.test",
                             "pad": "x" * 70000})
    assert response.status_code == 413
    assert response.json()["field"] == "body"


def test_cors_preflight(client: TestClient) -> None:
    response = client.options("/api/event", headers={"Origin": "https://site.test",
                                                     "Access-Control-Request-Method": "POST"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(("headers", "reason"), [
    ({"DNT": "1"}, "opt-out"),
    ({"Sec-GPC": "1"}, "opt-out"),
    ({"Sec-Purpose": "prefetch;prerender"}, "prefetch"),
    ({"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
     "bot"),
    ({"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "HeadlessChrome/124.0.0.0 Safari/537.36"}, "bot"),
    ({"User-Agent": "curl/8.5.0"}, "bot"),
])
def test_deliberate_drops_answer_202_with_the_reason(client: TestClient, store: Store,
                                                    headers: dict[str, str], reason: str) -> None:
    response = post(client, {"n": "pageview", "u": "https://drop.test/", "d": "drop.test"},
                    **headers)
    assert response.status_code == 202
    assert response.headers["x-collector-dropped"] == reason
    flush(client)
    assert rows(store, "drop.test") == []


def test_no_response_of_the_ingest_path_sets_a_cookie(client: TestClient) -> None:
    responses = [
        post(client, {"n": "pageview", "u": "https://c.test/", "d": "c.test"}),
        post(client, "{"),
        post(client, {"n": "pageview", "u": "https://c.test/", "d": "c.test"}, DNT="1"),
        client.options("/api/event"),
        client.get("/pixel.gif?d=c.test&u=/p", headers=HEADERS),
        client.get("/pixel.gif", headers=HEADERS),
        client.get("/js/script.js"),
    ]
    for response in responses:
        assert "set-cookie" not in response.headers
    assert not client.cookies


def test_pixel_records_a_pageview(client: TestClient, store: Store) -> None:
    response = client.get("/pixel.gif?d=pixel.test&u=/newsletter&r=https://mail.example.org/",
                          headers=HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["cache-control"].startswith("no-store")
    assert response.content.startswith(b"GIF89a")
    flush(client)
    assert rows(store, "pixel.test", "name, pathname, referrer") == [
        ("pageview", "/newsletter", "mail.example.org")]


@pytest.mark.parametrize(("query", "dropped"), [
    ("", "invalid d"), ("?d=pixel-bad.test", "invalid u"), ("?u=/x", "invalid d"),
    ("?d=not a domain&u=/x", "unknown-site"),  # it names no site, as on /api/event
    ("?d=pixel-bad.test&u=javascript:alert(1)", "invalid u")])
def test_malformed_pixel_still_returns_the_gif(client: TestClient, store: Store,
                                               query: str, dropped: str) -> None:
    response = client.get(f"/pixel.gif{query}", headers=HEADERS)
    assert response.status_code == 200
    assert response.content.startswith(b"GIF89a")
    assert response.headers["x-collector-dropped"] == dropped
    flush(client)
    assert rows(store, "pixel-bad.test") == []


def test_allow_list_and_exclusions(store: Store, engine_url: str) -> None:
    add_site(store, "allowed.test")
    set_exclusions(store, "allowed.test", ("203.0.113.0/24",), ("/admin/*",))
    add_site(store, "open.test")
    try:
        with running_app(store, engine_url) as client:
            assert post(client, {"n": "pageview", "u": "https://x.test/", "d": "unlisted.test"}
                        ).headers["x-collector-dropped"] == "unknown-site"
            # The test client's address is inside the excluded range.
            assert post(client, {"n": "pageview", "u": "https://allowed.test/",
                                 "d": "allowed.test"}).headers["x-collector-dropped"] == "excluded"
            assert post(client, {"n": "pageview", "u": "https://open.test/admin/users",
                                 "d": "open.test"}).headers.get("x-collector-dropped") is None
            flush(client)
        assert rows(store, "unlisted.test") == []
        assert rows(store, "allowed.test") == []
        assert rows(store, "open.test") == [("pageview", "/admin/users")]
        set_exclusions(store, "open.test", (), ("/admin/*",))
        with running_app(store, engine_url) as client:
            assert post(client, {"n": "pageview", "u": "https://open.test/admin/x",
                                 "d": "open.test"}).headers["x-collector-dropped"] == "excluded"
    finally:
        remove_site(store, "allowed.test")
        remove_site(store, "open.test")


def test_health_reports_the_buffer_and_drops(client: TestClient, store: Store) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}  # the rest needs a key
    key = create_key(store, "one.test")
    body = client.get("/api/health", headers={"Authorization": f"Bearer {key}"}).json()
    assert body["status"] == "ok"
    assert body["store"] == "embedded"
    assert body["written_rows"]["events"] >= 1
    assert body["dropped"]["bot"] >= 1


def test_a_visit_crossing_midnight_keeps_yesterdays_hash(store: Store, engine_url: str) -> None:
    import datetime as dt

    evening = dt.datetime(2026, 5, 4, 23, 50, tzinfo=dt.UTC).timestamp()
    clock = {"now": evening}
    body = {"n": "pageview", "u": "https://midnight.test/a", "d": "midnight.test"}
    with running_app(store, engine_url, clock=lambda: clock["now"]) as client:
        post(client, body)
        clock["now"] = evening + 20 * 60  # 00:10, the visit goes on
        post(client, {**body, "u": "https://midnight.test/b"})
        clock["now"] = evening + 24 * 3600  # the next evening: a new day, a new hash
        post(client, {**body, "u": "https://midnight.test/c"})
        flush(client)
    (first, second, third) = rows(store, "midnight.test", "visitor, visit")
    assert first == second
    assert third[0] != first[0]


def test_referrer_spam_is_dropped(store: Store, engine_url: str, tmp_path: Path) -> None:
    spam_list = tmp_path / "referrer-spam.txt"
    spam_list.write_text("1-99seo.com\n")
    with running_app(store, engine_url, spam_list=spam_list) as client:
        spam = post(client, {"n": "pageview", "u": "https://spam.test/", "d": "spam.test",
                             "r": "https://www.1-99seo.com/promo"})
        fine = post(client, {"n": "pageview", "u": "https://spam.test/", "d": "spam.test",
                             "r": "https://not-1-99seo.com.example/"})
        flush(client)
    assert spam.headers["x-collector-dropped"] == "spam"
    assert "x-collector-dropped" not in fine.headers
    assert rows(store, "spam.test", "referrer") == [("not-1-99seo.com.example",)]


def test_a_request_without_user_agent_is_not_counted(client: TestClient) -> None:
    response = client.post("/api/event", content=json.dumps(
        {"n": "pageview", "u": "https://noua.test/", "d": "noua.test"}),
        headers={"User-Agent": ""})
    assert response.headers["x-collector-dropped"] == "bot"


def test_a_full_buffer_answers_503_and_keeps_what_it_accepted(store: Store,
                                                              engine_url: str) -> None:
    with running_app(store, engine_url, buffer_max_rows=6, flush_interval=3600) as client:
        body = {"n": "pageview", "u": "https://busy.test/", "d": "busy.test"}
        statuses = [post(client, body).status_code for _ in range(4)]
        refused = post(client, body)
        flush(client)
    # Each event takes one event row and one or two visit rows: 2 + 3 rows, then the bound.
    assert statuses == [202, 202, 503, 503]
    assert refused.status_code == 503
    assert refused.json()["error"]
    assert refused.headers["retry-after"] == "1"
    accepted = statuses.count(202)
    assert len(rows(store, "busy.test")) == accepted


@pytest.mark.parametrize(("site", "url", "referrer", "source"), [
    ("src1.test", "https://src1.test/?ref=producthunt", None, "producthunt"),
    ("src2.test", "https://src2.test/?utm_source=newsletter", None, "newsletter"),
    # utm_source first, then source, then ref; a tag names the source over the referrer.
    ("src3.test", "https://src3.test/?source=hn&utm_source=digest", None, "digest"),
    ("src4.test", "https://src4.test/?ref=producthunt", "https://duckduckgo.com/", "producthunt"),
    ("src5.test", "https://src5.test/", "https://duckduckgo.com/", "DuckDuckGo"),
])
def test_source_from_referrer_or_campaign_tags(client: TestClient, store: Store, site: str,
                                               url: str, referrer: str | None,
                                               source: str) -> None:
    post(client, {"n": "pageview", "u": url, "d": site, "r": referrer})
    flush(client)
    assert rows(store, site, "referrer_source") == [(source,)]
