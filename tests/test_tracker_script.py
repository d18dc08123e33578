"""The tracking script: its size budget, what it contains, its variants, and how it is served."""

from __future__ import annotations

import gzip
import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from collector.tracker.assets import SCRIPT, script_endpoint, variant
from collector.tracker.build import SOURCE, build, gzipped_size, main, minify
from collector.tracker.variants import FEATURES, INERT_FEATURES, features_of, select

GZIP_BUDGET = 1200
EFFECTIVE = sorted(FEATURES - INERT_FEATURES)
EVERY_VARIANT = [frozenset(combination) for size in range(len(EFFECTIVE) + 1)
                 for combination in itertools.combinations(EFFECTIVE, size)]


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = Starlette(routes=[Route("/js/script.js", script_endpoint, methods=["GET", "HEAD"]),
                            Route("/js/{name}", script_endpoint, methods=["GET", "HEAD"])])
    return TestClient(app)


@pytest.fixture(scope="module")
def every_variant() -> dict[frozenset[str], str]:
    return {features: build(features).decode() for features in EVERY_VARIANT}


def test_the_default_script_fits_the_gzip_budget() -> None:
    assert gzipped_size(SCRIPT.body) <= GZIP_BUDGET


def test_the_served_script_is_the_built_source() -> None:
    assert SCRIPT.body == build() == build(frozenset(), SOURCE)
    assert gzip.decompress(SCRIPT.gzipped) == SCRIPT.body


def test_the_script_speaks_the_events_api() -> None:
    script = SCRIPT.body.decode()
    for field in ("{n:", ",u:", ",d:", ",r:", ",w:", ",p:", ",i:", ",h:"):
        assert field in script
    assert '"/api/event"' in script
    assert "sendBeacon" in script and "keepalive" in script


def test_the_script_reports_engagement_as_plausibles_does() -> None:
    script = SCRIPT.body.decode()
    assert '.n="engagement"' in script and ".e=" in script and ".sd=" in script
    for signal in ('"visibilitychange"', '"blur"', '"focus"', '"scroll"', "hasFocus",
                   "scrollY", "innerHeight", "scrollHeight", ">2999"):
        assert signal in script


def test_plausibles_snippet_finds_the_same_function() -> None:
    script = SCRIPT.body.decode()
    assert re.search(r"\.collector=\w\.plausible=", script)
    assert ".collector||" in script and ".plausible||" in script  # either queue


def test_the_script_honours_privacy_signals_and_stores_only_the_opt_out() -> None:
    script = SCRIPT.body.decode()
    for signal in ("doNotTrack", "msDoNotTrack", "globalPrivacyControl", "webdriver",
                   "_phantom", "__nightmare", "Cypress", "includeLocalhost", "allowAutomation",
                   '"plausible_ignore"'):
        assert signal in script
    assert "cookie" not in script.lower()
    assert "sessionStorage" not in script
    assert re.findall(r'"collector_\w+"', script) == ['"collector_ignore"']
    # Only the opt-out is written, under its own key: plausible_ignore is only read.
    assert re.findall(r'\w\("setItem"[^)]*\)', script) == [
        re.search(r'\w\("setItem",1\)', script).group(0)]  # type: ignore[union-attr]


def test_no_variant_loads_from_elsewhere_or_stores_more(
        every_variant: dict[frozenset[str], str]) -> None:
    for features, script in every_variant.items():
        assert "http:" not in script and "https:" not in script and "//" not in script, features
        assert "cookie" not in script.lower() and "sessionStorage" not in script, features
        assert script.count("setItem") == 1, features


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_every_variant_parses(every_variant: dict[frozenset[str], str], tmp_path: Path) -> None:
    """All 1,024 feature sets, parsed by node's own parser in one process."""
    sources = tmp_path / "variants.json"
    sources.write_text(json.dumps({"+".join(sorted(f)) or "default": code
                                   for f, code in every_variant.items()}))
    checker = ("const vm = require('vm'), all = require(process.argv[1]); let bad = [];"
               "for (const [name, code] of Object.entries(all)) {"
               "  try { new vm.Script(code); } catch (e) { bad.push(name + ': ' + e.message); } }"
               "if (bad.length) { console.error(bad.join('\\n')); process.exit(1); }")
    subprocess.run(["node", "-e", checker, str(sources)], check=True)


def test_each_feature_adds_its_own_code(every_variant: dict[frozenset[str], str]) -> None:
    default = every_variant[frozenset()]
    marks = {"compat": 'getElementById("plausible")', "exclusions": ".exclude",
             "file-downloads": '"add-file-types"', "local": None, "manual": ".url",
             "outbound-links": '"Outbound Link: Click"', "pageview-props": '"event-"',
             "revenue": "$:", "tagged-events": "plausible-event-"}
    for feature, mark in marks.items():
        script = every_variant[frozenset({feature})]
        assert script != default, feature
        if mark:
            assert mark in script and mark not in default, feature
    # Local keeps localhost; manual sends no pageview of its own and wraps no history.
    assert "localhost" in default and "localhost" not in every_variant[frozenset({"local"})]
    manual = every_variant[frozenset({"manual"})]
    assert "pushState" in default and "pushState" not in manual
    assert '"hashchange"' in every_variant[frozenset({"hash"})]
    # Revenue in tagged events comes only with both features.
    assert "plausible-revenue-" in every_variant[frozenset({"tagged-events", "revenue"})]
    assert "plausible-revenue-" not in every_variant[frozenset({"tagged-events"})]


def test_click_tracking_comes_with_the_variants_that_track_clicks(
        every_variant: dict[frozenset[str], str]) -> None:
    for features, script in every_variant.items():
        tracks_clicks = bool(features & {"outbound-links", "file-downloads", "tagged-events"})
        assert ('"auxclick"' in script) == tracks_clicks, features
        assert ('"File Download"' in script) == tracks_clicks, features


@pytest.mark.parametrize(("name", "features"), [
    ("script.js", set()),
    ("plausible.js", set()),
    ("analytics.js", set()),
    ("script.hash.js", {"hash"}),
    ("plausible.outbound-links.hash.js", {"hash", "outbound-links"}),
    ("script.tagged-events.revenue.file-downloads.js",
     {"tagged-events", "revenue", "file-downloads"}),
    ("script.pageleave.js", set()),  # engagement is in every script
    ("plausible.compat.exclusions.file-downloads.hash.local.manual.outbound-links."
     "pageview-props.revenue.tagged-events.js", set(EFFECTIVE)),
])
def test_plausible_file_names_name_their_features(name: str, features: set[str]) -> None:
    assert features_of(name) == features


@pytest.mark.parametrize("name", [
    "script.hash.hash.js", "script.unknown.js", "script.hash", "tracker.js", "script.js.js",
    "Script.js", "script..js", "script.hash.JS", "p.js", "plausible-web.js", ".js", "script",
])
def test_other_names_are_no_script(name: str) -> None:
    assert features_of(name) is None


def test_a_variant_does_not_depend_on_the_order_of_its_name(client: TestClient) -> None:
    one = client.get("/js/plausible.hash.tagged-events.outbound-links.js")
    other = client.get("/js/script.outbound-links.hash.tagged-events.js")
    assert one.status_code == other.status_code == 200
    assert one.content == other.content == build(
        frozenset({"hash", "tagged-events", "outbound-links"}))
    assert one.headers["etag"] == other.headers["etag"]


def test_every_base_name_serves_the_default_script(client: TestClient) -> None:
    for name in ("script.js", "plausible.js", "analytics.js", "script.pageleave.js"):
        response = client.get(f"/js/{name}", headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200, name
        assert response.content == SCRIPT.body, name


@pytest.mark.parametrize("name", ["script.hash.hash.js", "script.nope.js", "other.js",
                                  "plausible.hash"])
def test_unknown_names_are_not_found(client: TestClient, name: str) -> None:
    response = client.get(f"/js/{name}")
    assert response.status_code == 404
    assert "etag" not in response.headers


def test_variants_are_served_like_the_script(client: TestClient) -> None:
    response = client.get("/js/script.tagged-events.js", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.content == variant(frozenset({"tagged-events"})).body
    again = client.get("/js/script.tagged-events.js",
                       headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


def test_each_set_of_features_is_built_once() -> None:
    assert variant(frozenset({"hash"})) is variant(frozenset({"hash"}))
    assert variant(frozenset()) is SCRIPT


def test_select_keeps_the_lines_of_the_features_asked_for() -> None:
    source = "a\n//@ if hash\nb\n//@ if not manual\nc\n//@ else\nd\n//@ end\n//@ end\ne\n"
    assert select(source, frozenset()) == "a\ne\n"
    assert select(source, frozenset({"hash"})) == "a\nb\nc\ne\n"
    assert select(source, frozenset({"hash", "manual"})) == "a\nb\nd\ne\n"
    assert select("//@ if hash local\nx\n//@ end\n", frozenset({"local"})) == "x\n"


@pytest.mark.parametrize("source", ["//@ if hash\nx\n", "//@ end\n", "//@ if\n//@ end\n",
                                    "//@ if hashes\n//@ end\n", "//@ otherwise\n"])
def test_select_refuses_broken_directives(source: str) -> None:
    with pytest.raises(ValueError):
        select(source, frozenset())


def test_the_build_command_names_the_variant_and_compares(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    other = tmp_path / "other.js"
    other.write_bytes(b"console.log(1)\n" * 10)
    main(["script.hash.js", "--compare", str(other)])
    out, err = capsys.readouterr()
    assert out.encode() == build(frozenset({"hash"}))
    assert f"script.hash.js: {len(out.encode())} bytes, " in err
    assert f"{other}: 150 bytes, {gzipped_size(other.read_bytes())} bytes gzipped" in err
    with pytest.raises(SystemExit):
        main(["script.nope.js"])


def test_minify_removes_comments_and_whitespace_but_keeps_literals() -> None:
    source = """
    /* header */
    (function (win, first) {
      var second = "a  // b", third = /x\\/ y/g; // trailing
      return first + second + third.source + 1 / 2 + win.x;
    })(window, 1);
    """
    assert minify(source) == (
        '(function(a,b){var c="a  // b",d=/x\\/ y/g;'
        "return b+c+d.source+1/2+a.x})(window,1);"
    )


def test_minify_keeps_property_names_and_object_keys() -> None:
    assert minify("function f(url, name) { return {url: url, n: name.url}; }") == \
        "function c(a,b){return{url:a,n:b.url}}"


def test_minify_refuses_to_rename_a_global() -> None:
    with pytest.raises(ValueError, match="history"):
        minify("(function (history) { history.back(); })(history);")


@pytest.mark.parametrize("path", ["/js/script.js", "/js/plausible.hash.js"])
def test_script_is_served_as_javascript_with_a_long_cache(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    max_age = re.search(r"max-age=(\d+)", response.headers["cache-control"])
    assert "public" in response.headers["cache-control"]
    assert max_age is not None and int(max_age.group(1)) >= 86400
    assert "content-encoding" not in response.headers
    assert response.content == build(features_of(path.removeprefix("/js/")) or frozenset())
    assert "set-cookie" not in response.headers


def test_script_is_gzipped_when_the_client_accepts_it(client: TestClient) -> None:
    response = client.get("/js/script.js", headers={"Accept-Encoding": "gzip, deflate"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert int(response.headers["content-length"]) == len(SCRIPT.gzipped)
    assert response.content == SCRIPT.body  # httpx decodes it


@pytest.mark.parametrize("accept_encoding", ["gzip;q=0", "br", "", "identity"])
def test_script_is_plain_unless_gzip_is_accepted(client: TestClient,
                                                 accept_encoding: str) -> None:
    response = client.get("/js/script.js", headers={"Accept-Encoding": accept_encoding})
    assert "content-encoding" not in response.headers


def test_etag_is_strong_and_differs_per_encoding(client: TestClient) -> None:
    plain = client.get("/js/script.js", headers={"Accept-Encoding": "identity"})
    zipped = client.get("/js/script.js", headers={"Accept-Encoding": "gzip"})
    assert not plain.headers["etag"].startswith("W/")
    assert re.fullmatch(r'"[0-9a-f-]+"', plain.headers["etag"])
    assert plain.headers["etag"] != zipped.headers["etag"]


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_if_none_match_answers_304_without_a_body(client: TestClient, encoding: str) -> None:
    first = client.get("/js/script.js", headers={"Accept-Encoding": encoding})
    again = client.get("/js/script.js", headers={"Accept-Encoding": encoding,
                                                 "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert "max-age" in again.headers["cache-control"]


def test_a_stale_etag_gets_the_script(client: TestClient) -> None:
    response = client.get("/js/script.js", headers={"If-None-Match": '"old", W/"older"'})
    assert response.status_code == 200
    assert response.content == SCRIPT.body
