"""Every setting the collector reads, declared once: name, parser, default, help.

Nothing else in the package reads ``os.environ``; the one ``Settings`` object
built here at startup is passed down to whoever needs it. Each setting's parser
says what it allows, so a bad value stops startup with one line naming the
variable, the value and what is allowed. Command-line options that stand for a
setting (``collector serve --port``) go through the same parser.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from collector.errors import ConfigurationError, InvalidField

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")
_DATABASE_NAME = re.compile(r"[A-Za-z0-9_]*")
_SHOWN_VALUE_LENGTH = 80


@dataclasses.dataclass(frozen=True)
class Parser:
    """Text of a variable → its value. ``convert`` raises ValueError (its text, if any,
    is a detail for the message); ``allowed`` says what is accepted."""

    allowed: str
    convert: Callable[[str], Any]


def _whole_number(minimum: int, maximum: int | None = None) -> Parser:
    def convert(raw: str) -> int:
        value = int(raw) if _WHOLE_NUMBER.fullmatch(raw) else None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise ValueError
        return value

    if maximum is None:
        return Parser(f"a whole number of at least {minimum}", convert)
    return Parser(f"a whole number from {minimum} to {maximum}", convert)


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError
    return value


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _listen_address(raw: str) -> str:
    if not raw or any(character.isspace() for character in raw):
        raise ValueError
    return raw


def _directory(raw: str) -> Path:
    if not raw:
        raise ValueError
    return Path(raw)


def _optional_path(raw: str) -> Path | None:
    return Path(raw) if raw else None


def _optional_size(raw: str) -> int | None:
    return SIZE.convert(raw) if raw else None


def _seconds_or_zero(raw: str) -> float:
    """Seconds, where 0 means "at once" (``_seconds`` refuses it)."""
    return 0.0 if re.fullmatch(r"0+(\.0*)?", raw) else _seconds(raw)


def _http_address(raw: str) -> bool:
    """True for an http(s):// address with a host and a valid port, if any."""
    parts = urlsplit(raw)
    return parts.scheme in ("http", "https") and bool(parts.hostname) \
        and (parts.port is None or parts.port > 0)


def _store_url(raw: str) -> str:
    if not raw or (raw.startswith("chdb://") and raw != "chdb://"):
        return raw
    if _http_address(raw) and _DATABASE_NAME.fullmatch(urlsplit(raw).path.strip("/")):
        return raw
    raise ValueError


def _cluster_name(raw: str) -> str:
    # The characters remote_servers allows in a cluster's element name.
    if raw and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", raw):
        raise ValueError
    return raw


def _public_url(raw: str) -> str:
    if raw and not _http_address(raw):
        raise ValueError
    return raw


def _items(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _names(raw: str) -> tuple[str, ...]:
    return tuple(_items(raw))


def _domains(raw: str) -> tuple[str, ...]:
    from collector.sites import normalize_domain  # sites.py imports this module

    try:
        return tuple(normalize_domain(domain) for domain in _items(raw))
    except InvalidField as error:
        raise ValueError(error.reason) from None


def _networks(raw: str) -> tuple[IPNetwork, ...]:
    networks = []
    for cidr in _items(raw):
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise ValueError(f"{cidr!r} is not one") from None
    return tuple(networks)


def _log_level(raw: str) -> str:
    if raw.lower() not in LOG_LEVELS:
        raise ValueError
    return raw.lower()


def _log_format(raw: str) -> str:
    if raw.lower() not in LOG_FORMATS:
        raise ValueError
    return raw.lower()


def _rate(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError from None
    if not math.isfinite(value) or value < 0:
        raise ValueError
    return value


def _token(raw: str) -> str:
    if raw and (len(raw) < 16 or any(character.isspace() for character in raw)):
        raise ValueError
    return raw


PORT = _whole_number(1, 65535)
SIZE = _whole_number(1)
BOOLEAN = Parser("true or false (or 1/0, yes/no, on/off)", _boolean)
OPTIONAL_FILE = Parser("a file path, or empty for the default", _optional_path)


def _setting(default: Any, help: str, parser: Parser) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, "parser": parser})


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = _setting("127.0.0.1", "Address `collector serve` listens on.",
                         Parser("a host name or IP address", _listen_address))
    port: int = _setting(8000, "Port `collector serve` listens on.", PORT)
    public_url: str = _setting(
        "", "Public base URL of the collector, used in the printed snippet "
        "(default: http://HOST:PORT).",
        Parser("an http:// or https:// address, or empty", _public_url),
    )
    data_dir: Path = _setting(
        Path("collector-data"), "Directory for the embedded ClickHouse data and downloaded lists.",
        Parser("a directory path", _directory),
    )
    clickhouse_url: str = _setting(
        "", "Store: `chdb://DIR` runs ClickHouse in-process (default: chdb://DATA_DIR/clickhouse); "
        "`http(s)://user:password@host:8123/database` uses a ClickHouse server.",
        Parser("chdb://DIR, http(s)://[user:password@]host[:port][/database], or empty",
               _store_url),
    )
    clickhouse_cluster: str = _setting(
        "", "ClickHouse cluster (a name in the server's remote_servers) the schema is laid out "
        "on: replicated tables, sharded by visitor behind Distributed tables "
        "(docs/deployment.md); empty: one server.",
        Parser("a cluster name (letters, digits, _ . -), or empty", _cluster_name),
    )
    sites: tuple[str, ...] = _setting(
        (), "Comma-separated site domains always accepted, added to those stored with "
        "`collector sites add`. When both are empty every site is accepted (dev mode).",
        Parser("comma-separated domain names", _domains),
    )
    body_limit: int = _setting(
        65536, "Largest accepted event body in bytes (larger gets 413).", SIZE)
    max_header_bytes: int = _setting(
        32768, "Largest request head (request line and headers) in bytes; larger gets 431 "
        "and the connection is closed.", _whole_number(1024))
    header_timeout: float = _setting(
        10.0, "Seconds a client has to send a request's headers, from connecting or from "
        "the request's first byte; then the connection is closed (408).",
        Parser("a number of seconds above 0", _seconds))
    body_timeout: float = _setting(
        10.0, "Seconds a client has to send a request body once its headers are in; then "
        "408 and the connection is closed.", Parser("a number of seconds above 0", _seconds))
    keep_alive_timeout: int = _setting(
        5, "Seconds an idle keep-alive connection stays open.", _whole_number(1, 3600))
    max_connections: int = _setting(
        2000, "Open connections at which new requests get 503 until some close.", SIZE)
    visit_cache_bytes: int = _setting(
        256 * 1024 * 1024, "Memory the ongoing visits may hold (estimated, about 1.3 KB "
        "each: 256 MiB holds about 200,000); beyond it the least recent are forgotten and "
        "their next event starts a new visit.", _whole_number(1024 * 1024))
    flush_interval: float = _setting(1.0, "Seconds between writer flushes.",
                                     Parser("a number of seconds above 0", _seconds))
    flush_rows: int = _setting(20000, "Flush as soon as this many rows are buffered.", SIZE)
    flush_bytes: int = _setting(
        8 * 1024 * 1024, "Flush as soon as buffered rows reach this size.", SIZE)
    buffer_max_rows: int = _setting(
        500000, "Rows accepted and not yet in ClickHouse (in memory or the write-ahead log) at "
        "which ingest answers 503 instead of accepting more.", SIZE)
    wal_dir: Path | None = _setting(
        None, "Write-ahead log: every accepted event is written here before its 202, and "
        "stays until ClickHouse has it (default: DATA_DIR/wal).",
        Parser("a directory path, or empty for the default", _optional_path),
    )
    wal_fsync_interval: float = _setting(
        1.0, "Seconds between fsyncs of the write-ahead log: what a power loss may take "
        "(0: fsync every write before its answers, several ms each).",
        Parser("a number of seconds, 0 or more", _seconds_or_zero),
    )
    wal_max_bytes: int | None = _setting(
        None, "Disk the write-ahead log may use; beyond it ingest answers 503 "
        "(default: COLLECTOR_SPOOL_MAX_BYTES).",
        Parser("a whole number of at least 1, or empty for the default", _optional_size),
    )
    spool_dir: Path | None = _setting(
        None, "Deprecated: batches an older version spooled here are moved into the "
        "write-ahead log at startup (default: DATA_DIR/spool).",
        Parser("a directory path, or empty for the default", _optional_path),
    )
    spool_max_bytes: int = _setting(
        1 << 30, "Deprecated name of COLLECTOR_WAL_MAX_BYTES, used when that is empty.", SIZE)
    retention_months: int = _setting(
        13, "Months raw events are kept (ClickHouse TTL).",
        # Past a century the TTL no longer means anything; huge numbers overflow ClickHouse.
        _whole_number(1, 1200),
    )
    rollup_retention_months: int = _setting(
        25, "Months the aggregate rollups are kept, at least the raw months (0: forever).",
        _whole_number(0, 1200),
    )
    trusted_proxies: tuple[IPNetwork, ...] = _setting(
        (), "Comma-separated CIDRs of reverse proxies whose forwarding headers are believed.",
        Parser("comma-separated CIDR ranges such as 10.0.0.0/8", _networks),
    )
    honor_dnt: bool = _setting(True, "Drop events sent with `DNT: 1` or `Sec-GPC: 1`.", BOOLEAN)
    query_allowlist: tuple[str, ...] = _setting(
        ("utm_*", "ref", "source"),
        "Comma-separated query parameters (globs) read from page URLs; all others are dropped.",
        Parser("comma-separated parameter names or globs", _names),
    )
    scrub_paths: bool = _setting(
        True, "Replace e-mail addresses, long numbers and token-like segments in paths.", BOOLEAN)
    max_path_length: int = _setting(
        512, "Stored paths and referrers are cut to this length.", SIZE)
    geoip_db: Path | None = _setting(
        None, "MaxMind-format country or city database (GeoIP2/GeoLite2 or ip-location-db schema; "
        "default: the one `collector geoip update` downloads, when present).",
        OPTIONAL_FILE,
    )
    asn_db: Path | None = _setting(
        None, "MaxMind-format ASN database, for the ISP/organisation.", OPTIONAL_FILE)
    geo_city: bool = _setting(
        False, "Keep the city name (off: country and region only).", BOOLEAN)
    spam_list: Path | None = _setting(
        None, "Referrer-spam host list, one host per line "
        "(default: DATA_DIR/referrer-spam.txt when present).",
        OPTIONAL_FILE,
    )
    access_log: bool = _setting(
        True, "Write an access log line per request (never with the IP); events are summed "
        "into one line per 10 seconds (each its own line at debug level).", BOOLEAN)
    log_level: str = _setting("info", "Log level: debug, info, warning, error.",
                              Parser("one of " + ", ".join(LOG_LEVELS), _log_level))
    log_format: str = _setting(
        "text", "Log lines as `text` or `json` (one object per line; never an IP, a user agent "
        "or a query string).",
        Parser("one of " + ", ".join(LOG_FORMATS), _log_format),
    )
    metrics_token: str = _setting(
        "", "Bearer token for `/metrics` and the detailed `/api/health` (empty: only requests "
        "made on this host, not relayed by a proxy).",
        Parser("empty, or at least 16 characters without spaces", _token),
    )
    rate_limit_client: float = _setting(
        50.0, "Events per second one client address (IPv6: its /64) may have recorded, in "
        "bursts of twice that, before 429 (0: no limit; this host itself is never limited).",
        Parser("a number of requests per second, 0 or more", _rate),
    )
    rate_limit_site: float = _setting(
        0.0, "Events per second one site may have recorded, in bursts of twice that, before "
        "429 (0: no limit).",
        Parser("a number of requests per second, 0 or more", _rate),
    )
    report_max_seconds: float = _setting(
        30.0, "Seconds one report query may run; then it stops and the report answers 503 "
        "with Retry-After.", Parser("a number of seconds above 0", _seconds))
    report_max_memory: int = _setting(
        2 << 30, "Bytes of memory one report query may use; beyond them it stops and the "
        "report answers 400.", _whole_number(1 << 20))
    report_max_rows: int = _setting(
        1_000_000_000, "Stored rows one report query may read; beyond them it stops (or does "
        "not start) and the report answers 400.", SIZE)

    @property
    def store_url(self) -> str:
        return self.clickhouse_url or f"chdb://{self.data_dir.resolve() / 'clickhouse'}"

    @property
    def wal_path(self) -> Path:
        return self.wal_dir or self.data_dir / "wal"

    @property
    def wal_limit_bytes(self) -> int:
        return self.wal_max_bytes or self.spool_max_bytes

    @property
    def spool_path(self) -> Path:
        return self.spool_dir or self.data_dir / "spool"

    @property
    def spam_list_path(self) -> Path:
        return self.spam_list or self.data_dir / "referrer-spam.txt"

    @property
    def geoip_path(self) -> Path | None:
        if self.geoip_db is not None:
            return self.geoip_db
        downloaded = self.data_dir / "geoip" / "dbip-country-lite.mmdb"
        return downloaded if downloaded.exists() else None

    @property
    def base_url(self) -> str:
        shown_host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host
        return (self.public_url or f"http://{shown_host}:{self.port}").rstrip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``COLLECTOR_*`` variables, each parsed and checked by its declaration.

        ``overrides`` (typed values, from code) are taken as they are.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            variable = env_name(field.name)
            if variable in environ:
                values[field.name] = parse_setting(field.name, environ[variable], variable)
        values.update(overrides)
        return cls(**values)

    def with_options(self, **options: str | None) -> Settings:
        """These settings with command-line options applied (None: not given), each parsed
        like its variable and named as the option in an error."""
        given = {name: parse_setting(name, raw, option_name(name))
                 for name, raw in options.items() if raw is not None}
        return dataclasses.replace(self, **given)


_FIELDS = {field.name: field for field in dataclasses.fields(Settings)}


def env_name(field_name: str) -> str:
    return f"COLLECTOR_{field_name.upper()}"


def option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def parse_setting(field_name: str, raw: str, source: str) -> Any:
    """The value of setting ``field_name`` written as ``raw`` in ``source`` (a variable or an
    option); ConfigurationError naming the source, the value and what is allowed."""
    parser: Parser = _FIELDS[field_name].metadata["parser"]
    text = raw.strip()
    try:
        return parser.convert(text)
    except ValueError as error:
        detail = f" ({error})" if str(error) else ""
        raise ConfigurationError(
            f"{source}={_shown(text)} is invalid: expected {parser.allowed}{detail}") from None


def documented_settings() -> list[tuple[str, str, str]]:
    """(variable, default, help) for every setting, for docs and `collector settings`."""
    rows = []
    for field in dataclasses.fields(Settings):
        default = field.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        shown = str(shown).lower() if isinstance(shown, bool) else shown
        rows.append((env_name(field.name), "" if shown is None else str(shown),
                     field.metadata["help"]))
    return rows


def redacted_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (for messages and banners)."""
    scheme, separator, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    credentials, at, host = authority.rpartition("@")
    user, colon, _password = credentials.partition(":")
    if not (separator and at and colon):
        return url
    return f"{scheme}://{user}:***@{host}{slash}{path}"


def _shown(value: str) -> str:
    """A value as an error message quotes it: password hidden, cut when long."""
    shown = redacted_url(value)
    if len(shown) > _SHOWN_VALUE_LENGTH:
        shown = shown[:_SHOWN_VALUE_LENGTH - 3] + "..."
    return repr(shown)
