"""The tracking script: its size budget, what it contains, and how it is served."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from collector.tracker.assets import SCRIPT, script_endpoint
from collector.tracker.build import SOURCE, build, gzipped_size, minify

GZIP_BUDGET = 1000


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = Starlette(routes=[Route("/js/script.js", script_endpoint, methods=["GET", "HEAD"])])
    return TestClient(app)


def test_the_default_script_fits_the_gzip_budget() -> None:
    assert gzipped_size(SCRIPT.body) <= GZIP_BUDGET


def test_the_served_script_is_the_built_source() -> None:
    assert SCRIPT.body == build(SOURCE)
    assert gzip.decompress(SCRIPT.gzipped) == SCRIPT.body


def test_the_script_speaks_the_events_api() -> None:
    script = SCRIPT.body.decode()
    for field in ("n:", "u:", "d:", "r:", "w:", ".h=1", ".p=", ".i=!1"):
        assert field in script
    assert '"/api/event"' in script
    assert "sendBeacon" in script and "keepalive" in script


def test_the_script_honours_privacy_signals_and_stores_only_the_opt_out() -> None:
    script = SCRIPT.body.decode()
    for signal in ("doNotTrack", "msDoNotTrack", "globalPrivacyControl", "webdriver",
                   "_phantom", "__nightmare", "Cypress", "includeLocalhost", "allowAutomation"):
        assert signal in script
    assert "cookie" not in script.lower()
    assert "sessionStorage" not in script
    assert re.findall(r'"collector_\w+"', script) == ['"collector_ignore"']


def test_the_script_loads_nothing_from_elsewhere() -> None:
    script = SCRIPT.body.decode()
    assert "http:" not in script and "https:" not in script and "//" not in script


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_built_script_parses(tmp_path) -> None:  # type: ignore[no-untyped-def]
    built = tmp_path / "script.js"
    built.write_bytes(SCRIPT.body)
    subprocess.run(["node", "--check", str(built)], check=True)


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


def test_script_is_served_as_javascript_with_a_long_cache(client: TestClient) -> None:
    response = client.get("/js/script.js", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    max_age = re.search(r"max-age=(\d+)", response.headers["cache-control"])
    assert "public" in response.headers["cache-control"]
    assert max_age is not None and int(max_age.group(1)) >= 86400
    assert "content-encoding" not in response.headers
    assert response.content == SCRIPT.body
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
