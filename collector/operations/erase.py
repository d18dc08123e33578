"""Erasure on request: a site's events and visits matching filters, off the disk.

What goes (filters combine; dates are UTC days, the days the rollups are kept by):

- events of the site in the dates whose page matches ``path_like`` (a SQL LIKE
  pattern: ``%`` any run of characters, ``_`` one) and whose props hold
  ``prop`` (``KEY=VALUE``: the value is matched, and recorded, by its SHA-256);
- every stored row of each visit that had such an event, and, unless a prop is
  asked for (visits carry none), of each visit that started in the dates whose
  entry or exit page matches. The visit's other events stay: they are facts
  about other pages;
- the rollup rows of every UTC day those rows fell on, which are then rolled up
  again from the raw rows that remain (the views' own SELECTs,
  ``collector.storage.rollups``), so the rollups equal the raw tables; and rollup
  rows that match by themselves (the pages of ``events_rollup_daily``, the entry
  pages of ``visits_rollup_daily``, any row in the dates) on days whose raw rows
  already aged out.

No filter: everything of the site (``erase.site``, for ``collector sites remove
--erase``), its drop counts too (``collector.drops``: they hold no page nor prop,
so only a whole-site erasure removes them). A dry run (the default) counts rows
and bytes per table; applied, the rows leave the disk
(``collector.operations.removal``) and an audit row records the scope and what
went.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Any

from collector.drops import DROPS_TABLE
from collector.errors import InvalidField
from collector.operations import OperationContext, operation
from collector.operations.audit import record_removal
from collector.operations.removal import Removal, plan_removal, remove_all
from collector.operations.retention import forget_override
from collector.reports.dates import report_day
from collector.sites import normalize_domain
from collector.storage import Store
from collector.storage.migration_lease import migration_lease
from collector.storage.rollups import ROLLUP_TABLES, view_selects

ERASE_COMMAND, ERASE_SITE_COMMAND = "erase", "erase site"
# Visits go by the ids of their erased events: a subquery, which replicated tables
# accept in a mutation only when told.
_SUBQUERY_SETTINGS = {"allow_nondeterministic_mutations": 1}
# A rebuilt day is new data even when it happens to equal a block inserted before; on a
# cluster it is on every shard before the count that follows reads it.
_REBUILD_SETTINGS = {"insert_deduplicate": 0, "insert_distributed_sync": 1}
# Where a rollup table holds pages a path pattern can match by itself.
_ROLLUP_PAGES = {
    "events_rollup_daily": "pathname LIKE {path:String}",
    "visits_rollup_daily": "dimension = 'entry_page' AND value LIKE {path:String}",
}


@dataclass(frozen=True)
class Scope:
    site: str
    from_date: date | None = None
    to_date: date | None = None
    path_like: str | None = None
    prop: tuple[str, str] | None = None

    @property
    def whole_site(self) -> bool:
        return self == Scope(self.site)

    def as_json(self) -> dict[str, Any]:
        return {"site": self.site,
                "from": self.from_date.isoformat() if self.from_date else None,
                "to": self.to_date.isoformat() if self.to_date else None,
                "path_like": self.path_like,
                "prop": f"{self.prop[0]}=sha256:{self.prop_sha256}" if self.prop else None}

    @property
    def prop_sha256(self) -> str | None:
        """The SHA-256 of the prop value, which is all the store and the audit see of it:
        the value may be the very personal data being erased."""
        return hashlib.sha256(self.prop[1].encode()).hexdigest() if self.prop else None

    @property
    def parameters(self) -> dict[str, Any]:
        return {"site": self.site, "from": self.from_date, "to": self.to_date,
                "path": self.path_like, "prop_key": self.prop[0] if self.prop else None,
                "prop_sha256": self.prop_sha256}


def scope_of(site: str, from_date: str | None = None, to_date: str | None = None,
             path_like: str | None = None, prop: str | None = None) -> Scope:
    """The erasure asked for, checked: InvalidField naming the parameter otherwise."""
    first, last = _day(from_date, "from_date"), _day(to_date, "to_date")
    if first and last and first > last:
        raise InvalidField(f"from_date {first} is after to_date {last}", "from_date")
    if path_like is not None and not path_like:
        raise InvalidField("path_like is empty (use % for any path)", "path_like")
    pair = None
    if prop is not None:
        key, equals, value = prop.partition("=")
        if not equals or not key:
            raise InvalidField(f"prop {prop!r} is not KEY=VALUE", "prop")
        pair = (key, value)
    return Scope(normalize_domain(site, "site"), first, last, path_like, pair)


@operation("erase.matching")
def erase(context: OperationContext, site: str, from_date: str | None = None,
          to_date: str | None = None, path_like: str | None = None, prop: str | None = None,
          yes: bool = False) -> dict[str, Any]:
    """Erase the site's rows matching the filters (a dry run unless ``yes``)."""
    scope = scope_of(site, from_date, to_date, path_like, prop)
    return erase_scope(context, scope, ERASE_COMMAND, apply=yes)


@operation("erase.site")
def erase_site(context: OperationContext, site: str, yes: bool = False) -> dict[str, Any]:
    """Erase everything of ``site``: raw rows, rollups and its own retention (a dry run
    unless ``yes``). The audit keeps the record."""
    scope = scope_of(site)
    result = erase_scope(context, scope, ERASE_SITE_COMMAND, apply=yes)
    if yes:
        forget_override(context.store, scope.site)
    return result


def erase_scope(context: OperationContext, scope: Scope, command: str,
                apply: bool) -> dict[str, Any]:
    if not apply:
        return _erasure(context, scope, command, apply)
    # One removal at a time among the collectors sharing the store: two erasures (or a
    # purge) between this one's deletes and its rebuild would leave the rollups wrong.
    with migration_lease(context.store, context.deployment, doing="removing rows of"):
        return _erasure(context, scope, command, apply)


def _erasure(context: OperationContext, scope: Scope, command: str,
             apply: bool) -> dict[str, Any]:
    store, deployment = context.store, context.deployment
    parameters = scope.parameters
    events = _event_condition(scope)
    visits = _visit_condition(scope, deployment.stored_table("events"))
    days = [] if scope.whole_site else _days_touched(store, events, visits, parameters)
    parameters["days"] = days
    removals = [plan_removal(store, deployment, "visits", visits, parameters,
                             _SUBQUERY_SETTINGS),
                plan_removal(store, deployment, "events", events, parameters)]
    removals += [plan_removal(store, deployment, table, _rollup_condition(scope, table),
                              parameters) for table in ROLLUP_TABLES]
    if scope.whole_site:
        removals.append(plan_removal(store, deployment, DROPS_TABLE, "site = {site:String}",
                                     parameters))
    result: dict[str, Any] = {
        "dry_run": not apply, "scope": scope.as_json(),
        "days_rebuilt": [day.isoformat() for day in days],
        "tables": {removal.table: removal.as_json() for removal in removals},
        "rows": sum(removal.rows for removal in removals),
        "bytes": sum(removal.bytes for removal in removals)}
    if not apply:
        return result
    remove_all(store, removals, context.progress, context.notes.append)
    for index, (table, rebuilt) in enumerate(_rebuild(store, scope.site, days).items()):
        result["tables"][table]["rows_rebuilt"] = rebuilt
        context.progress(index + 1, len(ROLLUP_TABLES), f"{table}: rolled up again")
    record_removal(store, command, scope.as_json(), _audited(removals))
    return result


def _event_condition(scope: Scope) -> str:
    terms = ["site = {site:String}", *_date_terms("toDate(timestamp)", scope)]
    if scope.path_like is not None:
        terms.append("pathname LIKE {path:String}")
    if scope.prop is not None:
        # Matched by its hash: a mutation's text stays on the server's disk.
        terms.append("arrayExists((key, value) -> key = {prop_key:String} "
                     "AND lower(hex(SHA256(value))) = {prop_sha256:String}, "
                     "prop_keys, prop_values)")
    return " AND ".join(terms)


def _visit_condition(scope: Scope, events_table: str) -> str:
    """``events_table``: where a visit's events are, beside it (on a cluster the local
    table of its shard: a visitor's events and visits are sharded alike, and a
    Distributed table inside a distributed read is refused)."""
    if scope.whole_site:
        return "site = {site:String}"
    by_events = (f"visit IN (SELECT visit FROM {events_table} WHERE "
                 f"{_event_condition(scope)} AND visit != 0)")
    if scope.prop is not None:  # visits hold no props: only their events can match
        return f"site = {{site:String}} AND {by_events}"
    own = _date_terms("toDate(start_time)", scope)
    if scope.path_like is not None:
        own.append("(entry_page LIKE {path:String} OR exit_page LIKE {path:String})")
    return f"site = {{site:String}} AND ({' AND '.join(own)} OR {by_events})"


def _rollup_condition(scope: Scope, table: str) -> str:
    """The site's rollup rows on the touched days, and those matching by themselves."""
    if scope.whole_site:
        return "site = {site:String}"
    own = None
    if scope.prop is None:
        terms = _date_terms("toDate(hour)", scope)
        if scope.path_like is not None:
            page = _ROLLUP_PAGES.get(table)
            terms = terms + [page] if page else []
        own = " AND ".join(terms) if terms else None
    touched = "toDate(hour) IN {days:Array(Date)}"
    return f"site = {{site:String}} AND ({touched}{f' OR {own}' if own else ''})"


def _date_terms(day: str, scope: Scope) -> list[str]:
    return ([f"{day} >= {{from:Date}}"] if scope.from_date else []) \
        + ([f"{day} <= {{to:Date}}"] if scope.to_date else [])


def _days_touched(store: Store, events: str, visits: str,
                  parameters: dict[str, Any]) -> list[date]:
    """The UTC days of the raw rows that go: the rollup days to build again."""
    rows = store.rows(
        f"SELECT DISTINCT toDate(timestamp) AS day FROM events WHERE {events} "
        f"UNION DISTINCT SELECT DISTINCT toDate(start_time) AS day FROM visits WHERE {visits}",
        parameters)
    return sorted(row[0] for row in rows)


def _rebuild(store: Store, site: str, days: list[date]) -> dict[str, int]:
    """Roll up ``days`` of ``site`` again from the raw rows; rows written per table."""
    written = {}
    for table, select in view_selects().items():
        rows = 0
        if days:
            during = "site = {site:String} AND toDate(hour) IN {days:Array(Date)}"
            parameters = {"site": site, "days": days}
            # The filter on the views' group keys reaches the raw tables' primary key.
            store.command(f"INSERT INTO {table} SELECT * FROM ({select}) WHERE {during}",
                          parameters, settings=_REBUILD_SETTINGS)
            rows = int(store.rows(f"SELECT count() FROM {table} WHERE {during}",
                                  parameters)[0][0])
        written[table] = rows
    return written


def _audited(removals: list[Removal]) -> dict[str, dict[str, int]]:
    return {removal.table: {"rows": removal.rows, "bytes": removal.bytes}
            for removal in removals}


def _day(text: str | None, field: str) -> date | None:
    return None if text is None else report_day(text, field)
