"""The collector's own exceptions.

    CollectorError
    ├── ConfigurationError       a setting or file is unusable; startup stops with its message
    ├── DownloadError            a data file (geo database, spam list) could not be fetched,
    │                            or what arrived is unusable; the installed file is kept
    ├── StorageError             anything the store reports (driver errors are translated here)
    │   ├── StorageUnavailable   the store cannot be reached or opened right now
    │   ├── DataDirectoryBusy    another process owns the embedded data directory
    │   ├── SchemaMismatch       the migrated store differs from collector/schema.py
    │   └── QueryLimitExceeded   a report query reached COLLECTOR_REPORT_MAX_*; 400 or 503
    ├── OverloadedError          no room left for accepted events; ingest answers 503
    │   └── LogFull              the write-ahead log reached COLLECTOR_WAL_MAX_BYTES
    └── ClientError              a request the client must fix; carries its HTTP status
        ├── InvalidField         400, names the field and the reason
        ├── PayloadTooLarge      413
        ├── Unauthorized         401
        ├── Forbidden            403
        ├── NotFound             404
        └── TooManyRequests      429, with the seconds for Retry-After

Client errors render as JSON ``{"error": reason, "field": name}`` in one handler
(``collector.app``). No message ever carries an IP address or a user agent.
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every error the collector raises on purpose."""


class ConfigurationError(CollectorError):
    pass


class DownloadError(CollectorError):
    pass


class StorageError(CollectorError):
    pass


class StorageUnavailable(StorageError):
    pass


class DataDirectoryBusy(StorageError):
    pass


class SchemaMismatch(StorageError):
    """A column or rollup dimension declared in ``collector.schema`` has no migration."""


class QueryLimitExceeded(StorageError):
    """ClickHouse stopped a query at one of its store's limits (``storage.QueryLimits``).

    ``limit`` is rows, memory, time, or engine memory (the whole engine short of it, not
    this query's limit); ``allowed`` is that limit's value (0 for engine memory).
    """

    def __init__(self, detail: str, limit: str, allowed: float) -> None:
        super().__init__(detail)
        self.limit = limit
        self.allowed = allowed


class OverloadedError(CollectorError):
    pass


class LogFull(OverloadedError):
    """The write-ahead log has no room for one more request's rows."""


class ClientError(CollectorError):
    status_code = 400

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field

    def as_json(self) -> dict[str, str]:
        body = {"error": self.reason}
        if self.field is not None:
            body["field"] = self.field
        return body


class InvalidField(ClientError):
    status_code = 400


class PayloadTooLarge(ClientError):
    status_code = 413


class Unauthorized(ClientError):
    status_code = 401


class Forbidden(ClientError):
    status_code = 403


class NotFound(ClientError):
    status_code = 404


class TooManyRequests(ClientError):
    """A rate limit (``collector.ratelimit``) refused the request; retry after some seconds."""

    status_code = 429

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
