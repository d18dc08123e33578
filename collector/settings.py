"""Every setting the collector reads, declared once: name, type, default, help.

Nothing else in the package reads ``os.environ``; the one ``Settings`` object
built here at startup is passed down to whoever needs it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collector.errors import ConfigurationError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _setting(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = _setting("127.0.0.1", "Address `collector serve` listens on.")
    port: int = _setting(8000, "Port `collector serve` listens on.")
    public_url: str = _setting(
        "", "Public base URL of the collector, used in the printed snippet "
        "(default: http://HOST:PORT)."
    )
    data_dir: Path = _setting(
        Path("collector-data"), "Directory for the embedded ClickHouse data and downloaded lists."
    )
    clickhouse_url: str = _setting(
        "", "Store: `chdb://DIR` runs ClickHouse in-process (default: chdb://DATA_DIR/clickhouse); "
        "`http(s)://user:password@host:8123/database` uses a ClickHouse server."
    )
    sites: tuple[str, ...] = _setting(
        (), "Comma-separated site domains always accepted, added to those stored with "
        "`collector sites add`. When both are empty every site is accepted (dev mode)."
    )
    body_limit: int = _setting(65536, "Largest accepted event body in bytes (larger gets 413).")
    flush_interval: float = _setting(1.0, "Seconds between writer flushes.")
    flush_rows: int = _setting(20000, "Flush as soon as this many rows are buffered.")
    flush_bytes: int = _setting(8 * 1024 * 1024, "Flush as soon as buffered rows reach this size.")
    buffer_max_rows: int = _setting(
        500000, "Buffered rows at which ingest answers 503 instead of accepting more."
    )
    spool_dir: Path | None = _setting(
        None, "Where batches wait on disk while ClickHouse is unreachable "
        "(default: DATA_DIR/spool)."
    )
    spool_max_bytes: int = _setting(
        1 << 30, "Disk the spool may use; beyond it ingest answers 503 once memory is full too."
    )
    retention_months: int = _setting(13, "Months raw events are kept (ClickHouse TTL).")
    trusted_proxies: tuple[IPNetwork, ...] = _setting(
        (), "Comma-separated CIDRs of reverse proxies whose forwarding headers are believed."
    )
    honor_dnt: bool = _setting(True, "Drop events sent with `DNT: 1` or `Sec-GPC: 1`.")
    query_allowlist: tuple[str, ...] = _setting(
        ("utm_*", "ref", "source"),
        "Comma-separated query parameters (globs) read from page URLs; all others are dropped.",
    )
    scrub_paths: bool = _setting(
        True, "Replace e-mail addresses, long numbers and token-like segments in paths."
    )
    max_path_length: int = _setting(512, "Stored paths and referrers are cut to this length.")
    geoip_db: Path | None = _setting(
        None, "MaxMind-format country or city database (GeoIP2/GeoLite2 or ip-location-db schema; "
        "default: the one `collector geoip update` downloads, when present)."
    )
    asn_db: Path | None = _setting(None, "MaxMind-format ASN database, for the ISP/organisation.")
    geo_city: bool = _setting(False, "Keep the city name (off: country and region only).")
    spam_list: Path | None = _setting(
        None, "Referrer-spam host list, one host per line "
        "(default: DATA_DIR/referrer-spam.txt when present)."
    )
    access_log: bool = _setting(True, "Write an access log line per request (never with the IP).")
    log_level: str = _setting("info", "Log level: debug, info, warning, error.")

    @property
    def store_url(self) -> str:
        return self.clickhouse_url or f"chdb://{self.data_dir.resolve() / 'clickhouse'}"

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
        """Build settings from ``COLLECTOR_*`` variables; a bad value names its variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            variable = env_name(field.name)
            if variable in environ:
                try:
                    values[field.name] = _parse(field.type, environ[variable])
                except ValueError as exc:
                    raise ConfigurationError(f"{variable}: {exc}") from exc
        values.update(overrides)
        return cls(**values)


def env_name(field_name: str) -> str:
    return f"COLLECTOR_{field_name.upper()}"


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


def _parse(kind: Any, raw: str) -> Any:
    raw = raw.strip()
    if kind in ("int", int):
        return int(raw)
    if kind in ("float", float):
        return float(raw)
    if kind in ("bool", bool):
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if kind == "Path":
        return Path(raw)
    if kind == "Path | None":
        return Path(raw) if raw else None
    if kind == "tuple[str, ...]":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind == "tuple[IPNetwork, ...]":
        try:
            return tuple(ipaddress.ip_network(p.strip(), strict=False)
                         for p in raw.split(",") if p.strip())
        except ValueError as exc:
            raise ValueError(f"not a list of CIDRs ({exc})") from None
    return raw
