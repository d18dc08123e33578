"""``GET /metrics``: the app's Prometheus metrics, in a registry of its own.

Counts the ingest path keeps anyway — rows accepted and written (``writer.stats``), drops
by reason (the pipeline's), answers refused (a dict the app increments on a non-202), the
rate limits' refusals — are read from the app's state when Prometheus scrapes, so an
event pays nothing for them. Only the writer's flushes (its ``observer``) and report
queries, each far rarer than an event, observe histograms as they happen. Each app has
its own ``CollectorRegistry``: two apps in one process never mix their numbers.

Who may read: with ``COLLECTOR_METRICS_TOKEN`` set, a request bearing it
(``Authorization: Bearer <token>``); without it, only a request made on this host
itself — loopback peer, and no forwarding header, since a reverse proxy on the same
host relays the internet from loopback too.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from starlette.datastructures import State
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from collector.errors import Forbidden, Unauthorized

FLUSH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REPORT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


class Rejections:
    """Ingest answers other than 202, by status: a plain dict, incremented on the event loop."""

    def __init__(self) -> None:
        self.by_status: dict[int, int] = {}

    def count(self, status: int) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1


class WriterMetrics:
    """The writer's ``observer``: flush latency, insert errors and replayed batches."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._flush_seconds = Histogram(
            "collector_flush_seconds", "Time to insert one flushed batch into a table.",
            ["table"], registry=registry, buckets=FLUSH_BUCKETS)
        self._insert_errors = Counter(
            "collector_insert_errors", "Inserts the store refused or did not answer (retried).",
            ["table"], registry=registry)
        self._replayed = Counter(
            "collector_replayed_batches",
            "Batches written from the write-ahead log or spool after an outage or a restart.",
            registry=registry)

    def flushed(self, table: str, rows: int, seconds: float) -> None:
        self._flush_seconds.labels(table).observe(seconds)

    def insert_failed(self, table: str) -> None:
        self._insert_errors.labels(table).inc()

    def replayed(self, batches: int) -> None:
        self._replayed.inc(batches)


class _StateCollector:
    """Reads the app's counters when scraped; nothing before startup has built them."""

    def __init__(self, state: State, rejections: Rejections) -> None:
        self._state = state
        self._rejections = rejections

    def collect(self) -> Iterator[Metric]:
        state = self._state
        writer = getattr(state, "writer", None)
        if writer is None:
            return
        stats = writer.stats
        yield _labelled("collector_rows_accepted",
                        "Rows accepted into the write buffer, by table.", "table",
                        dict(stats.accepted))
        yield _labelled("collector_rows_written",
                        "Rows written to the store, by table.", "table", dict(stats.written))
        yield _labelled("collector_events_dropped",
                        "Ingest requests deliberately not recorded, by reason.", "reason",
                        dict(state.pipeline.drops.by_reason))
        yield _labelled("collector_ingest_rejected",
                        "POST /api/event answers other than 202, by status.", "status",
                        {str(status): count
                         for status, count in dict(self._rejections.by_status).items()})
        yield _labelled("collector_rate_limited",
                        "Requests refused with 429, by limit (client, site, auth).", "limit",
                        state.rate_limits.refused())
        yield _labelled("collector_connections_refused",
                        "Requests the connection limits refused before the app saw them "
                        "(header too large: 431, header or body too slow: 408), by reason.",
                        "reason", dict(getattr(state, "connection_refusals", {})))
        yield GaugeMetricFamily("collector_buffer_rows",
                                "Rows accepted and not yet written to the store.",
                                value=writer.buffered_rows)
        yield GaugeMetricFamily("collector_log_bytes",
                                "Bytes of the write-ahead log on disk.",
                                value=log_bytes(state))
        yield GaugeMetricFamily("collector_store_failing",
                                "1 while the last write to the store failed, else 0.",
                                value=1 if stats.failed_attempts else 0)


def _labelled(name: str, documentation: str, label: str, values: dict[str, int]) -> Metric:
    metric = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        metric.add_metric([key], value)
    return metric


def log_bytes(state: State) -> int:
    """Bytes of the write-ahead log on disk."""
    return int(state.writer.stats.log_bytes)


class AppMetrics:
    """Everything ``/metrics`` shows for one app (``app.state.metrics``)."""

    def __init__(self, state: State) -> None:
        self.registry = CollectorRegistry()
        self.rejections = Rejections()
        self.writer = WriterMetrics(self.registry)
        self.report_seconds = Histogram(
            "collector_report_query_seconds", "Time to answer one POST /api/v2/query.",
            registry=self.registry, buckets=REPORT_BUCKETS)
        self.registry.register(_StateCollector(state, self.rejections))
        ProcessCollector(registry=self.registry)  # memory and CPU of this process

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The metrics in the format ``accept`` asks for (OpenMetrics or Prometheus text)."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


async def metrics_endpoint(request: Request) -> Response:
    require_operator(request)
    metrics: AppMetrics = request.app.state.metrics
    # On the event loop, like the ingest path that updates most of these counts.
    body, content_type = metrics.exposition(request.headers.get("accept", ""))
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


def require_operator(connection: HTTPConnection) -> None:
    """Unauthorized or Forbidden unless the request may read the collector's internals."""
    if not is_operator(connection):
        if connection.app.state.settings.metrics_token:
            raise Unauthorized("send Authorization: Bearer <COLLECTOR_METRICS_TOKEN>",
                               "authorization")
        raise Forbidden("only from this host (or set COLLECTOR_METRICS_TOKEN)", "authorization")


def is_operator(connection: HTTPConnection) -> bool:
    """The metrics token (when set), or a request made on this host (when it is not)."""
    expected: str = connection.app.state.settings.metrics_token
    if expected:
        # Constant-time: the answer's timing must not tell how much of the token matched.
        return hmac.compare_digest(bearer_token(connection).encode(), expected.encode())
    headers = connection.headers
    client = connection.client
    return client is not None and _is_loopback(client.host) \
        and not any(name in headers for name in FORWARDING_HEADERS)


def bearer_token(connection: HTTPConnection) -> str:
    header = connection.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
