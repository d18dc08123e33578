"""Retention per site in two tiers, and the purge that enforces it.

Tiers: the raw rows (``events``, ``visits``) are kept ``COLLECTOR_RETENTION_MONTHS``,
the aggregate rollups and drop counts ``COLLECTOR_ROLLUP_RETENTION_MONTHS`` (0: forever), so a
site keeps its trend reports after its raw rows are gone. The settings are the
tables' TTL, which holds every site; a site may keep less (``retention.set``,
stored in ``site_retention``), never more, and never its rollups shorter than
its raw rows.

``retention.purge`` removes what is past each site's tiers: a dry run counts
the rows and bytes per table; applied, it drops the partitions that are
entirely expired and rewrites the others without the expired rows
(``collector.operations.removal``), then writes an audit row. ``collector
serve`` runs it once a day (``DailyPurge``).
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from collector.errors import InvalidField
from collector.operations import OperationContext, Progress, operation, store_deployment
from collector.operations.audit import last_recorded, record_removal
from collector.operations.removal import plan_removal, remove_all
from collector.schema import TIME_COLUMNS
from collector.settings import Settings
from collector.sites import allowed_domains, normalize_domain
from collector.storage import Store, apply_retention, open_store
from collector.storage.migration_lease import migration_lease
from collector.storage.rollups import AGGREGATE_TABLES

logger = logging.getLogger("collector")
PURGE_COMMAND = "purge"
_MAXIMUM_MONTHS = 1200


@dataclass(frozen=True)
class Tiers:
    """Months a site's rows are kept: raw events and visits, and rollups (0: forever)."""

    raw_months: int
    rollup_months: int

    def as_json(self) -> dict[str, int]:
        return {"raw_months": self.raw_months, "rollup_months": self.rollup_months}


def default_tiers(settings: Settings) -> Tiers:
    return Tiers(settings.retention_months, settings.rollup_retention_months)


def effective_tiers(default: Tiers, override: Tiers | None) -> Tiers:
    """A site's tiers: its own (0 in a tier: the setting's), never beyond the settings,
    which are the TTL, and its rollups never shorter than its raw rows."""
    if override is None:
        return default
    raw = min(override.raw_months or default.raw_months, default.raw_months)
    rollup = override.rollup_months or default.rollup_months
    if default.rollup_months:
        rollup = min(rollup, default.rollup_months)
    return Tiers(raw, max(rollup, raw) if rollup else 0)


def stored_overrides(store: Store) -> dict[str, Tiers]:
    """Each site's own tiers as stored (0 in a tier: the setting's)."""
    rows = store.rows("SELECT site, raw_months, rollup_months FROM site_retention FINAL "
                      "WHERE deleted = 0 ORDER BY site")
    return {site: Tiers(int(raw), int(rollup)) for site, raw, rollup in rows}


def site_tiers(store: Store, settings: Settings) -> dict[str, Tiers]:
    """The effective tiers of every site with its own; the others have the settings'."""
    default = default_tiers(settings)
    return {site: effective_tiers(default, override)
            for site, override in stored_overrides(store).items()}


def forget_override(store: Store, site: str) -> None:
    """Remove a site's own tiers (with its data: ``erase.site``)."""
    _save_override(store, site, Tiers(0, 0), deleted=True)


def months_before(day: date, months: int) -> date:
    """``day`` moved back ``months`` calendar months, clamped to the month's end as
    ClickHouse's ``subtractMonths`` does."""
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last_day))


@operation("retention.show")
def show(context: OperationContext, site: str | None = None) -> dict[str, Any]:
    """The settings' tiers and each known site's, with the first day each tier still holds."""
    default = default_tiers(context.settings)
    overrides = stored_overrides(context.store)
    today = datetime.now(UTC).date()
    if site is not None:
        sites = [normalize_domain(site, "site")]
    else:
        sites = sorted(_known_sites(context.store, context.settings) | set(overrides))
    return {**default.as_json(),
            "sites": [_site_entry(name, default, overrides.get(name), today)
                      for name in sites]}


@operation("retention.set")
def set_tiers(context: OperationContext, site: str, raw_months: int | None = None,
              rollup_months: int | None = None, reset: bool = False) -> dict[str, Any]:
    """Give ``site`` tiers of its own, shorter than the settings' (``reset``: the settings'
    again). A tier not given keeps its current value."""
    store, settings = context.store, context.settings
    domain = normalize_domain(site, "site")
    default = default_tiers(settings)
    current = stored_overrides(store).get(domain, Tiers(0, 0))
    if reset:
        if raw_months is not None or rollup_months is not None:
            raise InvalidField("reset takes no months: it returns the site to the settings",
                               "reset")
        forget_override(store, domain)
    else:
        if raw_months is None and rollup_months is None:
            raise InvalidField("give raw_months, rollup_months or reset", "raw_months")
        _check_known(store, settings, domain)
        wanted = Tiers(current.raw_months if raw_months is None
                       else _months(raw_months, default.raw_months, "raw_months"),
                       current.rollup_months if rollup_months is None
                       else _months(rollup_months, default.rollup_months, "rollup_months"))
        kept = effective_tiers(default, wanted)
        requested_rollup = wanted.rollup_months or default.rollup_months
        if requested_rollup and requested_rollup < kept.raw_months:
            raise InvalidField(
                f"rollups kept {requested_rollup} months would go before the raw rows "
                f"({kept.raw_months} months): reports read old days from the rollups",
                "rollup_months")
        _save_override(store, domain, wanted)
        context.notes.append("`collector purge` applies it now; `collector serve` purges daily")
    return _site_entry(domain, default, stored_overrides(store).get(domain),
                       datetime.now(UTC).date())


@operation("retention.purge")
def purge(context: OperationContext, dry_run: bool = True) -> dict[str, Any]:
    """Remove what is past each site's tiers (a dry run only counts it)."""
    return purge_expired(context.store, context.settings, dry_run=dry_run,
                         progress=context.progress, notes=context.notes.append)


def purge_expired(store: Store, settings: Settings, *, dry_run: bool, now: datetime | None = None,
                  progress: Progress | None = None,
                  notes: Callable[[str], None] = logger.warning,
                  trigger: str = "operator") -> dict[str, Any]:
    """The purge as of ``now``: rows and bytes per table past their site's tier, removed
    from disk unless ``dry_run``, with an audit row."""
    if dry_run:
        return _purge(store, settings, dry_run, now, progress, notes, trigger)
    # One removal at a time among the collectors sharing the store (migration_lease).
    with migration_lease(store, store_deployment(store, settings), doing="purging"):
        return _purge(store, settings, dry_run, now, progress, notes, trigger)


def _purge(store: Store, settings: Settings, dry_run: bool, now: datetime | None,
           progress: Progress | None, notes: Callable[[str], None],
           trigger: str) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    default = default_tiers(settings)
    deployment = store_deployment(store, settings)
    tiers = site_tiers(store, settings)
    if not dry_run:
        # The TTL follows the settings too, as at startup (a command may run with new ones).
        apply_retention(store, default.raw_months, deployment,
                        rollup_months=default.rollup_months)
    parameters = _tier_parameters(now, default, tiers)
    removals = [plan_removal(store, deployment, table, _expired(column, "raw"), parameters)
                for table, column in TIME_COLUMNS.items()]
    removals += [plan_removal(store, deployment, table, _expired(column, "rollup"), parameters)
                 for table, column in AGGREGATE_TABLES.items()]
    scope = {"trigger": trigger, "as_of": now.isoformat(timespec="seconds"),
             "default": default.as_json(),
             "sites": {site: kept.as_json() for site, kept in sorted(tiers.items())}}
    if not dry_run:
        remove_all(store, removals, progress, notes)
        record_removal(store, PURGE_COMMAND, scope, {r.table: r.as_json() for r in removals},
                       at=now)
    return {"dry_run": dry_run, **scope,
            "tables": {removal.table: removal.as_json() for removal in removals},
            "rows": sum(removal.rows for removal in removals),
            "bytes": sum(removal.bytes for removal in removals)}


class DailyPurge:
    """Inside ``collector serve``: apply the purge once a day, off the request path.

    The check runs hourly; the audit says when the last purge ran, so a restart does
    not reset the day and collectors sharing a server do not each purge hourly. Those
    that find a purge due at the same moment take turns (the purge's lease), and each
    reads the audit again once it holds it: the first purges, the others find it done.
    """

    CHECK_SECONDS = 3600.0
    EVERY = timedelta(days=1)

    def __init__(self, store: Store, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self._url, self._database = store.url, store.database
        self._settings = settings
        self._clock = clock

    def run(self) -> dict[str, Any] | None:
        """Purge if a day has passed since the last purge; its result, or None."""
        # A connection of its own: a long mutation must not hold up the writer's inserts.
        store = open_store(self._url, self._database)
        try:
            now = datetime.fromtimestamp(self._clock(), UTC)
            if not self._due(store, now):
                return None
            deployment = store_deployment(store, self._settings)
            with migration_lease(store, deployment, doing="purging"):
                if deployment.cluster:  # a purge's audit row written through another node
                    store.command("SYSTEM SYNC REPLICA audit")
                if not self._due(store, now):
                    return None
                result = purge_expired(store, self._settings, dry_run=False, now=now,
                                       trigger="daily")
        finally:
            store.close()
        removed = ", ".join(f"{table} {entry['rows']}" for table, entry
                            in result["tables"].items() if entry["rows"])
        logger.info("daily purge: removed %d rows (%d bytes)%s", result["rows"],
                    result["bytes"], f": {removed}" if removed else "")
        return result

    def _due(self, store: Store, now: datetime) -> bool:
        last = last_recorded(store, PURGE_COMMAND)
        return last is None or now - last >= self.EVERY


def _expired(column: str, tier: str) -> str:
    """SQL: the row is past its site's ``tier`` (0 months: kept forever)."""
    months = (f"transform(toString(site), {{sites:Array(String)}}, "
              f"{{{tier}_months:Array(UInt16)}}, {{{tier}_default:UInt16}})")
    return f"{months} > 0 AND {column} < subtractMonths({{now:DateTime64(3, 'UTC')}}, {months})"


def _tier_parameters(now: datetime, default: Tiers, tiers: dict[str, Tiers]) -> dict[str, Any]:
    sites = sorted(tiers)
    return {"now": now, "sites": sites,
            "raw_months": [tiers[site].raw_months for site in sites],
            "raw_default": default.raw_months,
            "rollup_months": [tiers[site].rollup_months for site in sites],
            "rollup_default": default.rollup_months}


def _site_entry(site: str, default: Tiers, override: Tiers | None,
                today: date) -> dict[str, Any]:
    kept = effective_tiers(default, override)
    return {"site": site, **kept.as_json(), "own": override is not None,
            # The first day whose rows each tier still holds; before raw_since only
            # the rollups answer reports.
            "raw_since": months_before(today, kept.raw_months).isoformat(),
            "rollups_since": months_before(today, kept.rollup_months).isoformat()
            if kept.rollup_months else None}


def _months(value: object, ceiling: int, field: str) -> int:
    """A site's own tier: 1 month up to the setting's (any, when the setting is forever)."""
    limit = ceiling or _MAXIMUM_MONTHS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        setting = "COLLECTOR_RETENTION_MONTHS" if field == "raw_months" \
            else "COLLECTOR_ROLLUP_RETENTION_MONTHS"
        raise InvalidField(
            f"{field} must be a whole number from 1 to {limit}: a site may keep its rows "
            f"less long than {setting} ({ceiling or 'forever'}), the TTL every site is held "
            "to, never longer", field)
    return value


def _sites_with_rows(store: Store) -> set[str]:
    return {str(row[0]) for row in store.rows("SELECT DISTINCT site FROM visits_rollup")}


def _known_sites(store: Store, settings: Settings) -> set[str]:
    """Sites allowed (stored or configured) and sites with rows in the rollups."""
    return allowed_domains(store, settings.sites) | _sites_with_rows(store)


def _check_known(store: Store, settings: Settings, domain: str) -> None:
    """In dev mode every site is known; else it must be allowed or have data."""
    allowed = allowed_domains(store, settings.sites)
    if allowed and domain not in allowed and domain not in _sites_with_rows(store):
        raise InvalidField(f"unknown site {domain!r}: it is not allowed and has no data",
                           "site")


def _save_override(store: Store, site: str, tiers: Tiers, deleted: bool = False) -> None:
    store.command(
        "INSERT INTO site_retention (site, raw_months, rollup_months, deleted, version) "
        "VALUES ({site:String}, {raw:UInt16}, {rollup:UInt16}, {deleted:UInt8}, "
        "{version:UInt64})",
        {"site": site, "raw": tiers.raw_months, "rollup": tiers.rollup_months,
         "deleted": int(deleted), "version": time.time_ns()})
