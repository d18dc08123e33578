"""The ASGI application: routes, startup and shutdown.

Startup opens the store (unless one is handed in), applies migrations, and
builds the pipeline in data-flow order — sites, salts, geo and spam lists, the
pipeline, the visit tracker, the writer — then starts the background duties.
Shutdown stops accepting and writes everything buffered.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from collector.dashboard.routes import dashboard_routes
from collector.drops import DROPS_COLUMNS, DROPS_TABLE, DropCounter
from collector.enrich import GeoLookup, SpamList
from collector.enrich.useragent import warm_up
from collector.errors import (
    ClientError,
    OverloadedError,
    QueryLimitExceeded,
    StorageError,
)
from collector.event import EVENT_COLUMNS
from collector.logs import EVENT_LOG_SECONDS, AccessLogMiddleware, EventLog
from collector.maintenance import Maintenance
from collector.metrics import AppMetrics, metrics_endpoint
from collector.openapi import openapi_endpoint
from collector.operations.channel_server import start_admin_channel
from collector.operations.retention import DailyPurge
from collector.pipeline import Pipeline
from collector.privacy import SaltKeeper
from collector.ratelimit import RateLimits
from collector.recording import Recorder
from collector.reloading import ReloadingFile
from collector.reports.api import report_limit_exceeded, report_routes
from collector.reports.sampling import DEFAULT_SAMPLING, SamplingPolicy
from collector.reports.service import Reports
from collector.reports.v1 import stats_v1_routes
from collector.settings import Settings
from collector.sites import SiteRegistry
from collector.storage import QueryLimits, Store, migrate, open_store
from collector.storage.cluster import Deployment
from collector.tracker.assets import script_endpoint
from collector.views.events import (
    Answer,
    EventEndpoint,
    answer_event,
    decoded_headers,
    error_answer,
    record_event,
    record_pixel,
)
from collector.views.health import health_routes
from collector.visits import VISIT_COLUMNS, VisitTracker
from collector.wal import open_log
from collector.writer import Writer

logger = logging.getLogger("collector")

SITE_REFRESH_SECONDS = 10.0
SALT_REFRESH_SECONDS = 60.0
DATA_FILE_CHECK_SECONDS = 30.0


# Report queries that run at once; more wait for a free connection.
REPORT_CONNECTIONS = 4


def create_app(settings: Settings, store: Store | None = None,
               clock: Callable[[], float] = time.time,
               sampling: SamplingPolicy = DEFAULT_SAMPLING) -> CollectorApp:
    """The collector as an ASGI app. Pass ``store`` to share one (tests); else it opens its own.

    ``clock`` is the time of every event and report; ``sampling`` says when reports
    read a sample (tests lower it to exercise the rollups on small data).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_store = store is None
        opened = store or open_store(settings.store_url)
        app.state.started_at = time.time()
        background = _start(app, settings, opened, clock, sampling)
        # Commands reach the store through us while we own the embedded data directory.
        channel = await start_admin_channel(settings, opened, app.state)
        try:
            yield
        finally:
            if channel is not None:
                await channel.stop()  # first: no operation may start once the writer stops
            app.state.event_log.flush()
            app.state.drops.stop()  # the counts go to the writer while it still accepts rows
            app.state.writer.stop()
            background.stop()
            app.state.geo.close()
            app.state.report_store.close()
            app.state.probe_store.close()
            if own_store:
                opened.close()

    routes = [
        Route("/api/event", EventEndpoint(), methods=["POST", "OPTIONS"]),
        Route("/pixel.gif", record_pixel, methods=["GET"]),
        Route("/js/script.js", script_endpoint, methods=["GET", "HEAD"]),
        Route("/js/{name}", script_endpoint, methods=["GET", "HEAD"]),  # Plausible's names
        *health_routes(),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        *report_routes(),
        *stats_v1_routes(),
        *dashboard_routes(),
    ]
    middleware = [Middleware(AccessLogMiddleware)] if settings.access_log else []
    app = CollectorApp(routes=routes, middleware=middleware, lifespan=lifespan,
                       exception_handlers={ClientError: _refused,  # 429s included
                                           OverloadedError: _refused,
                                           QueryLimitExceeded: report_limit_exceeded,
                                           StorageError: _store_unavailable})
    # Starlette would redirect /js/script.js/ to a URL built from the Host header.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.metrics = AppMetrics(app.state)
    app.state.rate_limits = RateLimits(settings)
    app.state.event_log = EventLog()
    return app


class CollectorApp(Starlette):
    """Starlette, with one shortcut: ``POST /api/event`` goes straight to its endpoint.

    It is the one path that sees every page view of every tracked site; skipping the
    middleware stack and the route table saves about a quarter of its cost. Its errors
    are rendered by ``collector.views.events`` exactly as the exception handlers render
    them elsewhere. ``collector serve`` goes further: its protocol answers most event
    requests without ASGI at all (``collector.event_protocol``), through the same code.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/event" \
                or scope["method"] != "POST":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        started = time.perf_counter()
        status = await record_event(scope, receive, send)
        self.event_answered(scope, status, started)

    def answer_event_request(self, raw_headers: list[tuple[bytes, bytes]], peer: str | None,
                             body: bytes) -> Answer:
        """The answer to an event request read by ``collector.event_protocol``, to be sent
        after ``commit_events``: its rows are staged for the next group write."""
        return answer_event(self.state, decoded_headers(raw_headers), peer, body, staged=True)

    def commit_events(self) -> None:
        """Write the staged rows of the events answered since the last call (one write)."""
        self.state.writer.commit()

    def event_answered(self, scope: Mapping[str, Any], status: int, started: float) -> None:
        """Count and log an answered event, whichever path answered it."""
        if status >= 400:
            self.state.metrics.rejections.count(status)
        if self.state.settings.access_log:
            self.state.event_log.answered(status, started)


def _start(app: Starlette, settings: Settings, store: Store,
           clock: Callable[[], float], sampling: SamplingPolicy) -> Maintenance:
    migrate(store, settings.retention_months, Deployment(settings.clickhouse_cluster),
            rollup_retention_months=settings.rollup_retention_months)
    sites = SiteRegistry(store, settings.sites)
    if sites.open_to_all:
        logger.warning("no site configured: accepting events for every domain (dev mode); "
                       "add sites with `collector sites add DOMAIN` or COLLECTOR_SITES")
    salts = SaltKeeper(store, clock)
    salts.refresh()  # today's salt (and tomorrow's, late in the day) before the first event
    geo = GeoLookup(settings.geoip_path, settings.asn_db, settings.geo_city)
    logger.info(geo.describe())
    spam_list = ReloadingFile(settings.spam_list_path, SpamList.from_file,
                              describe=lambda spam: f"{len(spam)} referrer-spam hosts")
    warm_up()  # compile the user-agent matchers now, not on the first visitor's request
    writer = Writer(store, {"events": EVENT_COLUMNS, "visits": VISIT_COLUMNS,
                            DROPS_TABLE: DROPS_COLUMNS},
                    flush_interval=settings.flush_interval, flush_rows=settings.flush_rows,
                    flush_bytes=settings.flush_bytes, max_rows=settings.buffer_max_rows,
                    log=open_log(settings), observer=app.state.metrics.writer)
    app.state.store = store
    # Reports get connections of their own: a query never waits behind an insert (with
    # its rollup views) on the writer's connection, nor an insert behind a query; several
    # at once, so one slow report holds up no other; each query bounded by the limits.
    app.state.report_store = open_store(
        store.url, store.database, connections=REPORT_CONNECTIONS,
        limits=QueryLimits(settings.report_max_seconds, settings.report_max_memory,
                           settings.report_max_rows))
    app.state.reports = Reports(app.state.report_store, clock, sampling)
    # The readiness probe's own: busy reports must not make a load balancer drop ingest.
    app.state.probe_store = open_store(store.url, store.database)
    app.state.sites = sites
    app.state.salts = salts
    app.state.geo = geo
    visit_tracker = VisitTracker(max_bytes=settings.visit_cache_bytes)
    app.state.spam_list = spam_list
    app.state.pipeline = Pipeline(settings, sites, salts, geo, spam_list, clock,
                                  continues_visit=visit_tracker.is_active,
                                  admit=app.state.rate_limits.admit)
    app.state.visit_tracker = visit_tracker
    app.state.writer = writer
    app.state.drops = DropCounter(sites, writer, clock)
    app.state.recorder = Recorder(app.state.pipeline, visit_tracker, writer, app.state.drops)
    writer.start()
    # Everything built so far lives as long as the process: keep it out of the cyclic
    # collector's full passes, which otherwise stall the event loop for tens of ms.
    gc.freeze()
    background = Maintenance([(settings.flush_interval, app.state.drops.flush),
                              (EVENT_LOG_SECONDS, app.state.event_log.flush),
                              (SITE_REFRESH_SECONDS, sites.reload),
                              (SALT_REFRESH_SECONDS, salts.refresh),
                              # Files the update commands replace while we run.
                              (DATA_FILE_CHECK_SECONDS, geo.reload_if_changed),
                              (DATA_FILE_CHECK_SECONDS, spam_list.check),
                              # Retention: once a day, on a connection of its own.
                              (DailyPurge.CHECK_SECONDS, DailyPurge(store, settings).run)])
    background.start()
    return background


async def _refused(request: Request, error: Exception) -> Response:
    """Input errors (4xx, 429 with ``Retry-After``) and a full buffer (503): the answer the
    event protocol gives for the same error (``views.events.error_answer``)."""
    assert isinstance(error, ClientError | OverloadedError)
    status, headers, body = error_answer(error)
    return Response(body, status, headers={name.decode(): value.decode()
                                           for name, value in headers})


async def _store_unavailable(request: Request, error: Exception) -> Response:
    """A report, page or key check that could not reach ClickHouse: 503, never the
    engine's text (it names internals; the log has it), and never a 500."""
    logger.warning("%s %s could not be answered: %s", request.method, request.url.path, error)
    return JSONResponse({"error": "the store is unavailable; retry shortly"}, 503,
                        headers={"Retry-After": "5", "Cache-Control": "no-store",
                                 "Access-Control-Allow-Origin": "*"})



