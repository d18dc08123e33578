"""Helpers for the real-browser tests: loopback servers in threads and the test site.

The collector and the test site run on two loopback ports, so the collector is
cross-origin to the pages exactly as in production.
"""

from __future__ import annotations

import html
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from collector.storage import Store
from tests.conftest import app_settings

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]
# Headless Chromium announces itself as "HeadlessChrome", which the bot filter drops.
DESKTOP_USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/126.0.0.0 Safari/537.36")
# Counts every attempt the page makes to send something, so "nothing was sent" is exact.
SEND_SPY = """
window.__sent = 0;
(function () {
  var beacon = navigator.sendBeacon.bind(navigator), fetcher = window.fetch.bind(window);
  navigator.sendBeacon = function () { window.__sent++; return beacon.apply(null, arguments); };
  window.fetch = function () { window.__sent++; return fetcher.apply(null, arguments); };
})();
"""
QUEUE_STUB = ("window.collector=window.collector||function(){"
              "(window.collector.q=window.collector.q||[]).push(arguments)}")


class BackgroundServer:
    """uvicorn serving ``app`` on a free loopback port, in a thread, lifespan included."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        """``options`` go to ``uvicorn.Config`` (collector.limits.server_options, say)."""
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, proxy_headers=False, lifespan="on",
                                **options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        wait_until(lambda: self._server.started or not self._thread.is_alive(), timeout=15)
        if not self._server.started:
            raise RuntimeError(f"the server on port {self.port} did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()


def wait_until(condition: Callable[[], object], timeout: float = 10.0,
               poll: Callable[[], None] = lambda: time.sleep(0.01)) -> None:
    """Poll ``condition`` (calling ``poll`` in between) until true or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        poll()


def site_app(collector_url: str) -> Starlette:
    """The tracked site: a small SPA at every path, a file, a landing page, a no-JS page."""

    async def spa(request: Request) -> HTMLResponse:
        site = request.query_params.get("site", "spa.example")
        flags = " data-hash" if "hash" in request.query_params else ""
        return HTMLResponse(_SPA_PAGE.format(collector=collector_url, site=html.escape(site),
                                             stub=QUEUE_STUB, flags=flags))

    async def no_js(request: Request) -> HTMLResponse:
        page = f"http://127.0.0.1:{request.url.port}/no-js"
        pixel = f"{collector_url}/pixel.gif?d=pixel.example&u={quote(page, safe='')}"
        return HTMLResponse(_NO_JS_PAGE.format(pixel=html.escape(pixel)))

    async def landed(request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>Partner</title><p>Elsewhere.</p>")

    async def report(request: Request) -> Response:
        return Response(b"%PDF-1.4\n%%EOF\n", media_type="application/pdf",
                        headers={"Content-Disposition": 'attachment; filename="report.pdf"'})

    return Starlette(routes=[
        Route("/no-js", no_js),
        Route("/landed", landed),
        Route("/files/report.pdf", report),
        Route("/{path:path}", spa),
    ])


_SPA_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<script>{stub}</script>
<script>collector("Queued Signup", {{props: {{plan: "pro"}}}});</script>
<script defer data-domain="{site}" data-include-localhost data-allow-automation
  data-outbound data-downloads{flags} src="{collector}/js/script.file-downloads.js"></script>
</head><body>
<nav>
  <a data-route href="/">Home</a>
  <a data-route id="products" href="/products">Products</a>
  <a data-route id="product" href="/products/42">Product 42</a>
</nav>
<main id="view">Home</main>
<a id="download" href="/files/report.pdf?session=secret">Annual report</a>
<a id="outbound" href="/landed">Partner</a>
<script>
  document.addEventListener("click", function (event) {{
    var link = event.target.closest("a[data-route]");
    if (!link) return;
    event.preventDefault();
    /* The query (?site=...) stays, so a reload keeps the page's site. */
    history.pushState({{}}, "", link.getAttribute("href") + location.search);
    document.getElementById("view").textContent = link.textContent;
  }});
  /* Outbound: the same test server under another host name, so nothing leaves loopback. */
  document.getElementById("outbound").href =
    "http://localhost:" + location.port + "/landed?token=secret";
</script>
</body></html>
"""

_NO_JS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>No JavaScript</title></head><body>
<p>Counted without JavaScript.</p>
<noscript><img src="{pixel}" alt="" width="1" height="1"></noscript>
</body></html>
"""


# Shared by the browser test modules, which import these names.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} is absent (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def collector(engine_url: str, store: Store) -> Iterator[tuple[str, Starlette]]:
    """The collector on a real loopback port, sharing the module's database."""
    from collector.app import create_app

    app = create_app(app_settings(engine_url), store)
    with BackgroundServer(app) as server:
        yield server.url, app


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()

