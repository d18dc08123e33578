"""``collector serve``: run the collector with uvicorn."""

from __future__ import annotations

import errno
import os
import socket

import click

from collector.cli.output import settings_from_context
from collector.errors import ConfigurationError
from collector.logs import uvicorn_log_config
from collector.settings import Settings, redacted_url
from collector.storage import open_store


@click.command()
# Text, not an int type: the setting's own parser checks them (range included), as for
# COLLECTOR_HOST/COLLECTOR_PORT, so a bad value fails like every other setting.
@click.option("--host", default=None, metavar="ADDRESS",
              help="Listen address (default: COLLECTOR_HOST, 127.0.0.1).")
@click.option("--port", default=None, metavar="PORT",
              help="Listen port (default: COLLECTOR_PORT, 8000).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: str | None) -> None:
    """Start the collector: ingest, dashboard and reports API.

    It prints the tracking snippet once the port is bound. While it runs, the other
    commands reach its store through its admin channel.
    """
    import uvicorn  # here, so that other commands start without the web stack

    from collector.app import create_app
    from collector.event_protocol import ingest_server_options
    from collector.limits import QuietDisconnects

    settings = settings_from_context(ctx).with_options(host=host, port=port)
    # Claim the store, then the port, before printing anything: a busy data directory
    # or a port in use fails in one line, never after "listening on".
    store = open_store(settings.store_url)
    try:
        listener = bind_listener(settings.host, settings.port)
    except ConfigurationError:
        store.close()
        raise
    click.echo(startup_banner(settings, store.url))
    app = create_app(settings, store)
    options = ingest_server_options(settings, app)
    # Requests the connection limits refused never reach the app: /metrics reads them here.
    app.state.connection_refusals = options["http"].refusals
    config = uvicorn.Config(
        QuietDisconnects(app), host=settings.host, port=settings.port,
        # The collector resolves client addresses itself (COLLECTOR_TRUSTED_PROXIES):
        # uvicorn must not believe X-Forwarded-For, and its access log prints IPs.
        proxy_headers=False, access_log=False, log_config=uvicorn_log_config(),
        server_header=False, lifespan="on",
        # Head size, header and body deadlines, keep-alive, connection cap (collector.limits).
        **options,
    )
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        listener.close()
        store.close()


def bind_listener(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``; ConfigurationError in one line when it cannot be."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        raise ConfigurationError(f"cannot listen on {host}: {error.strerror}") from None
    listener = socket.socket(family, kind, protocol)
    # As uvicorn does: a restart may bind while the old connections are in TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as error:
        listener.close()
        reason = "the port is in use" if error.errno == errno.EADDRINUSE else error.strerror
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {reason} (choose another with --port or "
            "COLLECTOR_PORT)") from None
    listener.set_inheritable(True)
    return listener


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


COMMANDS = [serve]
