"""Operation ``compliance.check``: what this installation collects, keeps and promises.

The statement is read from the live configuration, never written by hand: the
stored columns (from ``collector.schema``, compared with the store's own),
the settings that decide what reaches them (city, ISP, path scrubbing, campaign
tags), the retention each table's TTL enforces, the salts present, consent
handling, trusted proxies, the geo database and its attribution. Warnings name
the settings that weaken a promise. ``statement_markdown`` renders it for a site
owner to publish (``collector check --markdown``); the operator warnings stay out
of it, but every fact in it follows the settings, so it cannot promise more than
the collector does.

Forwarding headers: inside ``collector serve`` the pipeline counts requests
that carried ``X-Forwarded-For``/``Forwarded``/``X-Real-IP`` from a peer that is
not a trusted proxy; with no trusted proxy configured, any such request is a
warning. Run elsewhere (the server stopped, or a ClickHouse server shared by
several collectors) the count is unknown and the statement says so.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from collector.enrich.geo_update import DBIP_ATTRIBUTION, GEOIP_FILENAME, GEOIP_SUBDIRECTORY
from collector.operations import OperationContext, operation, store_deployment
from collector.operations.retention import Tiers, default_tiers, site_tiers
from collector.operations.share_privacy import share_privacy_json
from collector.privacy import SaltKeeper
from collector.schema import TABLES
from collector.settings import Settings
from collector.sites import list_sites
from collector.storage import Store
from collector.storage.cluster import LOCAL_SUFFIX, Deployment

RAW_RETENTION_WARNING_MONTHS = 25
CONSENT_SIGNALS = ("DNT: 1", "Sec-GPC: 1")
# What never reaches storage: no column can hold it (collector.schema, collector.event).
NEVER_STORED = (
    "IP addresses, in any form",
    "the raw user-agent string",
    "full query strings (only the campaign parameters listed above are read)",
    "exact screen sizes",
    "coordinates or any location finer than the city",
    "cookies, device identifiers, or anything stored in the browser (except a "
    "visitor's own opt-out choice)",
)
_TTL_MONTHS = re.compile(r"TTL .*?toIntervalMonth\((\d+)\)")


def _groups(settings: Settings, geo_database: Path | None) -> list[dict[str, Any]]:
    """Every stored column, grouped by what it tells; ``stored`` is False when the current
    settings leave it empty."""
    scrubbed = ("e-mail addresses, long numbers and token-like segments replaced"
                if settings.scrub_paths else "exactly as sent (COLLECTOR_SCRUB_PATHS=false)")
    no_geo = "no geo database is configured, so it stays empty"
    return [
        _group("page", f"the page: host name and path, without query string or fragment, "
                       f"{scrubbed}, cut at {settings.max_path_length} characters",
               "hostname", "pathname", "entry_page", "exit_page", "exit_hostname"),
        _group("referrer", "the referring site (host and path, no query string) and its "
                           "kind (search, social, e-mail, AI assistant, other site)",
               "referrer", "referrer_source", "referrer_medium", "channel"),
        _group("campaign", "campaign tags read from these query parameters of the page "
                           "address: " + ", ".join(settings.query_allowlist),
               "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"),
        _group("device", "browser and operating system names and versions, device class "
                         "and screen class (never the exact size)",
               "browser", "browser_version", "os", "os_version", "device", "screen"),
        _group("language", "the browser's primary language (de, not de-AT)", "language"),
        _group("location", "country and region, looked up from the IP address in a local "
                           "database while the request is handled", "country", "region",
               absent=None if geo_database else no_geo),
        _group("city", "the city, looked up the same way", "city",
               absent=None if settings.geo_city and geo_database
               else "COLLECTOR_GEO_CITY is off" if geo_database else no_geo),
        _group("isp", "the internet provider's organisation name", "isp",
               absent=None if settings.asn_db else "no ASN database is configured"),
        _group("time", "the time of each event by the server's clock, visit length, "
                       "engagement time and scroll depth",
               "timestamp", "start_time", "duration", "engaged_ms", "scroll_depth"),
        _group("event", "event names, and the properties a site sends with custom events",
               "name", "prop_keys", "prop_values", "interactive"),
        _group("revenue", "the amount and currency a site sends with a custom event "
                          "(a purchase)", "revenue_amount", "revenue_currency"),
        _group("visit", "counts per visit: pageviews, events, whether it bounced",
               "pageviews", "events", "interactive_events", "is_bounce"),
        _group("visitor", "a visitor hash that changes every day, and a visit number",
               "visitor", "visit"),
        _group("bookkeeping", "the site, and the row versions of a visit's updates",
               "site", "sign", "version"),
    ]


def _group(name: str, what: str, *columns: str, absent: str | None = None) -> dict[str, Any]:
    return {"name": name, "what": what, "columns": list(columns), "stored": absent is None,
            "why_empty": absent}


def declared_columns() -> set[str]:
    return {column.name for columns in TABLES.values() for column in columns}


@operation("compliance.check")
def check(context: OperationContext) -> dict[str, Any]:
    """The statement of this installation, with warnings for its risky settings."""
    settings, store = context.settings, context.store
    stored_sites = list_sites(store)
    domains = sorted({site.domain for site in stored_sites} | set(settings.sites))
    geo = geo_database_statement(settings)
    groups = _groups(settings, Path(geo["database"]) if geo["database"] else None)
    undescribed = sorted(declared_columns() - {column for group in groups
                                               for column in group["columns"]})
    if undescribed:  # a test keeps this empty; the statement still names every column
        groups.append(_group("other", "other stored values: " + ", ".join(undescribed),
                             *undescribed))
    retention = _retention(store, settings, domains)
    statement = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sites": {"domains": domains, "dev_mode": not domains},
        "collected": groups,
        "never_collected": list(NEVER_STORED),
        "undeclared_columns": _undeclared_columns(store),
        "retention": retention,
        "salts": _salts(store),
        "consent": {"honor_dnt": settings.honor_dnt, "signals": list(CONSENT_SIGNALS)},
        "proxies": {"trusted": [str(network) for network in settings.trusted_proxies],
                    "listening_on": settings.host,
                    "untrusted_forwarding": _untrusted_forwarding(context.server_state)},
        "geoip": geo,
        # Public share links: their k, noise budget and what each link spent today.
        "share_links": [share_privacy_json(store, domain) for domain in domains],
    }
    statement["warnings"] = warnings(statement, settings)
    return statement


def _retention(store: Store, settings: Settings, domains: list[str]) -> dict[str, Any]:
    """Months each tier is kept, per site (its own tiers, or the settings'), and what each
    table's TTL enforces. ``None``: kept until removed."""
    default = default_tiers(settings)
    own = site_tiers(store, settings)
    return {**_shown_tiers(default),
            "enforced_months": _enforced_months(store, store_deployment(store, settings)),
            "sites": [{"site": domain, **_shown_tiers(own.get(domain, default))}
                      for domain in domains]}


def _shown_tiers(tiers: Tiers) -> dict[str, int | None]:
    return {"raw_months": tiers.raw_months, "rollup_months": tiers.rollup_months or None}


def _enforced_months(store: Store, deployment: Deployment) -> dict[str, int | None]:
    """Each table's TTL in months, by its usual name (on a cluster, its local tables')."""
    rows = store.rows(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() "
        "AND (has({raw:Array(String)}, name) OR name LIKE '%rollup%') "
        "AND engine NOT IN ('MaterializedView', 'View', 'Distributed') ORDER BY name",
        {"raw": [deployment.stored_table(table) for table in ("events", "visits")]})
    return {name.removesuffix(LOCAL_SUFFIX) if deployment.cluster else name:
            int(found.group(1)) if (found := _TTL_MONTHS.search(engine)) else None
            for name, engine in rows}


def _undeclared_columns(store: Store) -> list[str]:
    """Columns the store's raw tables have beyond the declaration (an ALTER by hand)."""
    rows = store.rows("SELECT table, name FROM system.columns WHERE database = "
                      "currentDatabase() AND table IN ('events', 'visits') ORDER BY table, name")
    declared = {(table, column.name) for table, columns in TABLES.items() for column in columns}
    return [f"{table}.{name}" for table, name in rows if (table, name) not in declared]


def _salts(store: Store) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    days = SaltKeeper(store).days_with_salts()
    return {"days": [day.isoformat() for day in days], "today": today in days,
            "overdue": [day.isoformat() for day in days if day < today - timedelta(days=1)]}


def _untrusted_forwarding(server_state: Any) -> int | None:
    pipeline = getattr(server_state, "pipeline", None)
    return None if pipeline is None else int(pipeline.untrusted_forwarding)


def geo_database_statement(settings: Settings) -> dict[str, Any]:
    path = settings.geoip_path
    downloaded = settings.data_dir / GEOIP_SUBDIRECTORY / GEOIP_FILENAME
    found: dict[str, Any] = {"database": str(path) if path else None, "kind": None,
                             "source": None, "attribution": None, "city": settings.geo_city,
                             "asn_database": str(settings.asn_db) if settings.asn_db else None}
    if path is None:
        return found
    try:
        with maxminddb.open_database(str(path)) as reader:
            metadata = reader.metadata()
    except (OSError, ValueError, InvalidDatabaseError) as error:
        found["source"] = f"unreadable ({error})"
        return found
    found["kind"] = str(metadata.database_type)
    described = " ".join(map(str, (metadata.description or {}).values()))
    if path == downloaded or "dbip" in found["kind"].lower().replace("-", "") \
            or "db-ip" in described.lower():
        found["source"] = "DB-IP Lite"
        found["attribution"] = DBIP_ATTRIBUTION  # the CC BY 4.0 licence requires it
    else:
        found["source"] = found["kind"]
    return found


def warnings(statement: dict[str, Any], settings: Settings) -> list[dict[str, str]]:
    """Each setting that weakens a promise of the statement, with why."""
    found = []

    def warn(code: str, message: str) -> None:
        found.append({"code": code, "message": message})

    if settings.geo_city:
        warn("city", "COLLECTOR_GEO_CITY is on: the city is stored, which narrows a visitor "
                     "down far more than country and region")
    longest = max([settings.retention_months, *(site["raw_months"]
                                                for site in statement["retention"]["sites"])])
    if longest > RAW_RETENTION_WARNING_MONTHS:
        warn("raw-retention", f"raw events and visits are kept {longest} months, over "
                              f"{RAW_RETENTION_WARNING_MONTHS} (COLLECTOR_RETENTION_MONTHS)")
    forwarded = statement["proxies"]["untrusted_forwarding"]
    if not settings.trusted_proxies and forwarded:
        warn("forwarded-headers",
             f"{forwarded} requests carried forwarding headers (X-Forwarded-For, Forwarded, "
             "X-Real-IP) but COLLECTOR_TRUSTED_PROXIES is empty: behind a proxy every "
             "visitor gets the proxy's address (one country, one visitor hash)")
    if statement["sites"]["dev_mode"]:
        warn("dev-mode", "no site is configured: events for every domain are accepted "
                         "(add sites with `collector sites add` or COLLECTOR_SITES)")
    if not settings.honor_dnt:
        warn("consent", "COLLECTOR_HONOR_DNT is off: visitors who send DNT or GPC are "
                        "recorded anyway")
    if not settings.scrub_paths:
        warn("scrub-paths", "COLLECTOR_SCRUB_PATHS is off: e-mail addresses or tokens in "
                            "page paths are stored as they are")
    if statement["salts"]["overdue"]:
        warn("salts", "salts older than yesterday are still stored ("
             + ", ".join(statement["salts"]["overdue"]) + "): they are destroyed by a "
             "running `collector serve` (or `collector salts status`)")
    if statement["undeclared_columns"]:
        warn("columns", "the store has columns the collector does not declare: "
             + ", ".join(statement["undeclared_columns"]))
    return found


# ---- the published statement ---------------------------------------------------------

def statement_markdown(statement: dict[str, Any]) -> str:
    """The statement as Markdown a site owner can publish (no operator warnings)."""
    domains = statement["sites"]["domains"]
    lines = ["# Web analytics: what we collect", "",
             f"This statement covers {_listed(domains) if domains else 'every site'} and "
             "was generated from the live configuration of our analytics collector on "
             f"{statement['generated_at'][:10]}. It uses no cookies and stores nothing in "
             "your browser.", "", "## What we store about each visit", ""]
    lines += [f"- {group['what'][0].upper()}{group['what'][1:]}."
              for group in statement["collected"]
              if group["stored"] and group["name"] != "bookkeeping"]
    lines += ["", "## What we never store", ""]
    lines += [f"- {item[0].upper()}{item[1:]}." for item in statement["never_collected"]]
    lines += ["", "## How unique visitors are counted", "",
              "Your IP address exists only in the collector's memory while your request is "
              "handled. With your browser's user agent and a random salt it gives a visitor "
              "hash. The salt is new every day (UTC) and destroyed after at most 48 hours, "
              "after which nobody, the operator included, can link a hash to an address or "
              "to the same person on another day.", "", "## Your choices", ""]
    if statement["consent"]["honor_dnt"]:
        lines.append("Requests sent with Do Not Track (`DNT: 1`) or Global Privacy Control "
                     "(`Sec-GPC: 1`) are not recorded at all.")
    else:
        lines.append("Do Not Track and Global Privacy Control signals are not acted on by "
                     "this collector.")
    lines += ["", "## How long we keep it", "",
              "| site | events and visits | daily aggregate reports |", "|---|---|---|"]
    lines += [f"| {site['site']} | {shown_months(site['raw_months'])} | "
              f"{shown_months(site['rollup_months'])} |"
              for site in statement["retention"]["sites"]] or [
        f"| every site | {shown_months(statement['retention']['raw_months'])} | "
        f"{shown_months(statement['retention']['rollup_months'])} |"]
    lines += ["", "Reports show aggregates only, never single rows or visitor hashes."]
    lines += [f"Public share links of {site['site']} show only numbers about at least "
              f"{site['public_k']} visitors, with random noise that hides whether any one "
              f"visitor was counted (differential privacy, epsilon {site['epsilon']:g} per "
              f"answer, at most {site['epsilon_day']:g} per link and day)."
              for site in statement["share_links"] if site["share_links"]]
    geo = statement["geoip"]
    if geo["attribution"]:
        lines += ["", "## Location data", "", geo["attribution"] + "."]
    return "\n".join(lines) + "\n"


def shown_months(months: int | None) -> str:
    """A tier's months as the statement shows them."""
    return "until removed" if months is None else f"{months} months"


def _listed(domains: list[str]) -> str:
    return ", ".join(domains[:-1]) + (" and " if len(domains) > 1 else "") + domains[-1]

