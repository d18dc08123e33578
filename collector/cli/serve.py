"""``collector serve``: run the collector with uvicorn."""

from __future__ import annotations

import argparse
import os
from typing import Any

import uvicorn

from collector.app import create_app
from collector.logs import configure_logging, uvicorn_log_config
from collector.settings import Settings, redacted_url
from collector.storage import open_store


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="start the collector")
    serve.add_argument("--host", help="listen address (default COLLECTOR_HOST)")
    # Text, not type=int: the setting's own parser checks it (range included), as for
    # COLLECTOR_PORT, and a bad value fails like every other configuration error.
    serve.add_argument("--port", help="listen port (default COLLECTOR_PORT)")
    serve.set_defaults(handler=run_serve)


def run_serve(settings: Settings, arguments: argparse.Namespace) -> int:
    settings = settings.with_options(host=arguments.host, port=arguments.port)
    configure_logging(settings.log_level)
    # Claim the store before printing anything, so a busy data directory fails first.
    store = open_store(settings.store_url)
    print(startup_banner(settings, store.url))
    config = uvicorn.Config(
        create_app(settings, store), host=settings.host, port=settings.port,
        # The collector resolves client addresses itself (COLLECTOR_TRUSTED_PROXIES):
        # uvicorn must not believe X-Forwarded-For, and its access log prints IPs.
        proxy_headers=False, access_log=False, log_config=uvicorn_log_config(),
        server_header=False, lifespan="on",
    )
    try:
        uvicorn.Server(config).run()
    finally:
        store.close()
    return 0


def startup_banner(settings: Settings, store_url: str) -> str:
    where = (f"embedded ClickHouse, data in {store_url[len('chdb://'):]}"
             if store_url.startswith("chdb://") else f"ClickHouse server {redacted_url(store_url)}")
    return "\n".join([
        f"collector listening on http://{settings.host}:{settings.port} (pid {os.getpid()})",
        f"store: {where}",
        "add this to every page you want to count:",
        f'  <script defer data-domain="example.com" src="{settings.base_url}/js/script.js">'
        "</script>",
        "and, for visitors without JavaScript:",
        f'  <noscript><img src="{settings.base_url}/pixel.gif?d=example.com&u=/" alt=""'
        ' width="1" height="1"></noscript>',
    ])
