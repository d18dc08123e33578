"""The Grafana dashboards (dashboards/grafana/): files Grafana loads, SQL the engine answers.

Grafana cannot run here, so the files are checked for the shape Grafana and the official
ClickHouse data source plugin (grafana-clickhouse-datasource) read, and every query in
them runs on the embedded engine against the migrated schema, after traffic went in
through ``POST /api/event``: with the plugin's macros expanded the way its backend
expands them (``grafana_sql``), which refuses any macro or variable it does not know,
so a query cannot reach the engine half-substituted.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.reports.builder import SiteContext
from collector.reports.query import run_report
from collector.reports.request import parse_query
from collector.storage import Store
from tests.conftest import running_app
from tests.mmdb_files import write_mmdb
from tests.user_agents import BOTS, BROWSERS

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "dashboards" / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
PLUGIN = "grafana-clickhouse-datasource"
SITE, OTHER_SITE = "grafana.test", "other.grafana.test"
# The TestClient's address (tests/conftest.py) is a trusted proxy here, so each visitor
# is told apart by the address it forwards, which the geo database below places.
PROXIES = (ipaddress.ip_network("203.0.113.0/24"),)
COUNTRIES = {"198.51.100.0/24": "US", "192.0.2.0/24": "SE", "2001:db8:1000::/36": "DE"}


def _agent(browser: str, device: str) -> str:
    return next(agent for agent, (name, *_, kind) in BROWSERS
                if name == browser and kind == device)


@dataclass(frozen=True)
class Visitor:
    address: str
    agent: str
    pages: tuple[str, ...]
    referrer: str | None = None


# One visit each, 30 s between pages: four visitors, five pageviews, three bounces.
VISITORS = (
    Visitor("198.51.100.7", _agent("Chrome", "Desktop"), ("/", "/pricing"),
            "https://www.google.com/"),
    Visitor("192.0.2.10", _agent("Safari", "Mobile"), ("/",), "https://duckduckgo.com/"),
    Visitor("198.51.100.8", _agent("Firefox", "Desktop"), ("/blog/hello",)),
    Visitor("2001:db8:1000::5", _agent("Chrome", "Desktop"), ("/pricing",)),
)
PAGEVIEWS = sum(len(visitor.pages) for visitor in VISITORS)
# Yesterday, 10:00 UTC: inside the salts' lifetime and the retention TTL.
START = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=1)


# --- the plugin's macros and Grafana's variables -----------------------------------------


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time picker: epoch seconds, both ends included, and the interval."""

    start: int
    end: int
    interval_s: int = 60


VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")
MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")


def grafana_sql(sql: str, picked: TimeRange, variables: dict[str, str]) -> str:
    """``sql`` as the ClickHouse server receives it from the plugin.

    Grafana interpolates the dashboard's variables first (raw, or ``:singlequote``:
    quoted, inner quotes escaped); then the plugin's backend expands its macros:
    ``$__timeFilter(c)`` to ``c >= toDateTime(from) AND c <= toDateTime(to)`` (whole
    seconds), ``$__timeFilter_ms(c)`` to the same in milliseconds with
    ``fromUnixTimestamp64Milli`` (for the DateTime64 columns), ``$__fromTime`` and
    ``$__toTime`` to ``toDateTime(...)``, ``$__interval_s`` to the interval in seconds
    (at least 1), ``$__timeInterval(c)`` to its start of interval. Anything else is
    refused rather than passed on.
    """

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name not in variables:
            raise AssertionError(f"unknown variable ${name} in {sql!r}")
        value, form = variables[name], match.group(2)
        if form is None:
            return value
        if form == "singlequote":
            return "'" + value.replace("'", "\\'") + "'"
        raise AssertionError(f"unknown variable format :{form} in {sql!r}")

    interval = max(picked.interval_s, 1)
    with_arguments: dict[str, Callable[[str], str]] = {
        "timeFilter": lambda column: (f"{column} >= toDateTime({picked.start}) AND "
                                      f"{column} <= toDateTime({picked.end})"),
        "timeFilter_ms": lambda column: (
            f"{column} >= fromUnixTimestamp64Milli({int(picked.start * 1000)}) AND "
            f"{column} <= fromUnixTimestamp64Milli({int(picked.end * 1000)})"),
        "timeInterval": lambda column: (f"toStartOfInterval(toDateTime({column}), "
                                        f"INTERVAL {interval} second)"),
    }
    without = {"fromTime": f"toDateTime({picked.start})", "toTime": f"toDateTime({picked.end})",
               "interval_s": str(interval)}

    def macro(match: re.Match[str]) -> str:
        name, argument = match.group(1), match.group(2)
        if name in with_arguments and argument is not None and "," not in argument:
            return with_arguments[name](argument.strip())
        if name in without and argument is None:
            return without[name]
        raise AssertionError(f"macro {match.group(0)!r} is not one grafana_sql knows")

    expanded = MACRO.sub(macro, VARIABLE.sub(variable, sql))
    assert "$" not in expanded, f"left unsubstituted: {expanded!r}"
    return expanded


# --- the files -----------------------------------------------------------------------------


def load_dashboard(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def load_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


@dataclass(frozen=True)
class Query:
    dashboard: str
    title: str  # the panel's, or "variable <name>"
    sql: str
    timeseries: bool = False


def dashboard_queries(dashboard: dict[str, Any]) -> list[Query]:
    """Every SQL the dashboard sends: its query variables' and its panels' targets."""
    uid = dashboard["uid"]
    queries = [Query(uid, f"variable {variable['name']}", variable["query"]["rawSql"])
               for variable in dashboard["templating"]["list"] if variable["type"] == "query"]
    for panel in data_panels(dashboard):
        queries += [Query(uid, panel["title"], target["rawSql"], target["format"] == 0)
                    for target in panel["targets"]]
    return queries


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


DASHBOARDS = [load_dashboard(path) for path in DASHBOARD_FILES]
QUERIES = [query for dashboard in DASHBOARDS for query in dashboard_queries(dashboard)]
DATASOURCES = load_yaml(GRAFANA / "provisioning" / "datasources" / "collector-clickhouse.yaml")
PROVIDERS = load_yaml(GRAFANA / "provisioning" / "dashboards" / "collector.yaml")
COMPOSE = load_yaml(ROOT / "docker-compose.yml")


def test_there_is_a_dashboard_for_each_file() -> None:
    assert [path.name for path in DASHBOARD_FILES] == ["collector-traffic.json"]
    assert len({dashboard["uid"] for dashboard in DASHBOARDS}) == len(DASHBOARDS)


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda dashboard: dashboard["uid"])
def test_each_dashboard_has_the_shape_grafana_loads(dashboard: dict[str, Any]) -> None:
    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    assert dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    assert dashboard["id"] is None  # provisioning assigns it
    panels = data_panels(dashboard)
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    (source,) = DATASOURCES["datasources"]
    for panel in panels:
        assert panel["type"] in {"stat", "timeseries", "table", "bargauge"}, panel["title"]
        assert panel["title"] and panel["description"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        assert panel["targets"], panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": PLUGIN, "uid": source["uid"]}
        for target in panel["targets"]:
            assert target["refId"] and target["editorType"] == "sql" and target["rawSql"]
            # The plugin's formats: 0 a time series, 1 a table.
            expected = "timeseries" if target["format"] == 0 else "table"
            assert target["format"] in (0, 1) and target["queryType"] == expected
        assert (panel["type"] == "timeseries") == all(
            target["format"] == 0 for target in panel["targets"]), panel["title"]


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda dashboard: dashboard["uid"])
def test_the_site_is_a_query_variable_and_k_a_constant_of_one(dashboard: dict[str, Any]
                                                                ) -> None:
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["site"]["type"] == "query"
    assert variables["site"]["datasource"]["type"] == PLUGIN
    assert variables["site"]["definition"] == variables["site"]["query"]["rawSql"]
    assert variables["k"]["type"] == "constant" and variables["k"]["query"] == "1"
    for query in dashboard_queries(dashboard):
        if not query.title.startswith("variable"):
            assert "site = ${site:singlequote}" in query.sql, query.title


@pytest.mark.parametrize("query", QUERIES, ids=lambda query: query.title)
def test_no_query_selects_a_visitor_hash_or_a_row_per_visitor(query: Query) -> None:
    # Operators and owners see aggregates only: the hash is only ever counted.
    columns = re.sub(r"`[^`]*`", "", query.sql).replace("uniq(visitor)", "")
    assert not re.search(r"\bvisitor\b|\bvisit\b|\*", columns), query.sql
    if "GROUP BY" in query.sql and "Visitors" in query.sql and not query.timeseries:
        assert "HAVING Visitors >= ${k}" in query.sql, query.title


def test_the_datasource_is_the_plugin_on_the_compose_clickhouse_as_its_reader() -> None:
    assert DATASOURCES["apiVersion"] == 1
    (source,) = DATASOURCES["datasources"]
    assert source["type"] == PLUGIN and source["uid"] and source["editable"] is False
    settings = source["jsonData"]
    assert settings["host"] in COMPOSE["services"]
    assert (settings["protocol"], settings["port"]) in {("native", 9000), ("http", 8123)}
    assert settings["username"] == "grafana" and settings["defaultDatabase"] == "collector"
    # The password is read from the environment Grafana runs in, never written here.
    password = source["secureJsonData"]["password"]
    assert password == "$GRAFANA_CLICKHOUSE_PASSWORD"
    assert "GRAFANA_CLICKHOUSE_PASSWORD" in COMPOSE["services"]["grafana"]["environment"]


def mounts(service: str) -> dict[str, Path]:
    """Where each bind mount of a compose service appears in its container → the host path."""
    found = {}
    for volume in COMPOSE["services"][service]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = ROOT / source
    return found


def host_path(service: str, container_path: str) -> Path:
    for target, source in mounts(service).items():
        if container_path == target or container_path.startswith(target + "/"):
            return source / Path(container_path).relative_to(target)
    raise AssertionError(f"{container_path} is not mounted into {service}")


def test_the_provisioning_points_at_the_dashboards_folder() -> None:
    assert PROVIDERS["apiVersion"] == 1
    (provider,) = PROVIDERS["providers"]
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False
    folder = host_path("grafana", provider["options"]["path"])
    assert sorted(folder.glob("*.json")) == DASHBOARD_FILES
    provisioning = {target: source for target, source in mounts("grafana").items()
                    if target.startswith("/etc/grafana/provisioning/")}
    assert set(provisioning) == {"/etc/grafana/provisioning/datasources",
                                 "/etc/grafana/provisioning/dashboards"}
    assert all(any(source.glob("*.yaml")) for source in provisioning.values())


def test_compose_runs_grafana_only_in_its_profile() -> None:
    services = COMPOSE["services"]
    assert "profiles" not in services["clickhouse"] and "profiles" not in services["collector"]
    for name in ("grafana", "grafana-reader"):
        assert services[name]["profiles"] == ["grafana"]
    grafana = services["grafana"]
    assert grafana["image"].startswith("grafana/grafana:")
    assert grafana["environment"]["GF_INSTALL_PLUGINS"].split()[0] == PLUGIN
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path("grafana", home) in DASHBOARD_FILES
    assert grafana["depends_on"]["grafana-reader"]["condition"] == \
        "service_completed_successfully"
    for source in [*mounts("grafana").values(), *mounts("grafana-reader").values()]:
        assert source.exists(), source


def reader_statements(store: Store) -> list[str]:
    """The statements grafana-reader runs, each parsed by ClickHouse's own parser."""
    command = " ".join(COMPOSE["services"]["grafana-reader"]["command"])
    (create_user,) = re.findall(r'--query "([^"]+)"', command)
    grants = host_path("grafana-reader", "/reader-grants.sql").read_text(encoding="utf-8")
    statements = [create_user.replace("$$GRAFANA_CLICKHOUSE_PASSWORD", "secret")]
    statements += [statement for statement in
                   re.sub(r"--[^\n]*", "", grants).split(";") if statement.strip()]
    return [store.command("SELECT formatQuery({s:String})", {"s": statement})
            for statement in statements]


def test_the_reader_may_read_exactly_the_tables_the_dashboards_query(store: Store) -> None:
    create_user, *grants = reader_statements(store)
    assert create_user.startswith("CREATE USER OR REPLACE grafana ")
    assert "SETTINGS readonly = 2" in create_user
    granted = set()
    for grant in grants:
        table = re.fullmatch(r"GRANT SELECT ON collector\.(\w+) TO grafana", grant)
        assert table, grant
        granted.add(table.group(1))
    read = {table for query in QUERIES for table in re.findall(r"\bFROM\s+(\w+)", query.sql)}
    assert granted == read
    assert "salts" not in granted and "api_keys" not in granted


# --- the queries on the real schema, after traffic through ingest --------------------------


def post_pageview(client: Any, site: str, page: str, address: str, agent: str,
                  referrer: str | None = None) -> Any:
    body = {"n": "pageview", "u": f"https://{site}{page}", "d": site}
    if referrer:
        body["r"] = referrer
    return client.post("/api/event", content=json.dumps(body),
                       headers={"User-Agent": agent, "X-Forwarded-For": address,
                                "Content-Type": "text/plain"})


@pytest.fixture(scope="module")
def traffic(store: Store, engine_url: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[None]:
    """VISITORS on SITE, a bot dropped there, and one pageview on OTHER_SITE."""
    geo = write_mmdb(tmp_path_factory.mktemp("grafana") / "country.mmdb",
                     {network: {"country": {"iso_code": code}}
                      for network, code in COUNTRIES.items()}, "GeoLite2-Country")
    now = [START.timestamp()]
    with running_app(store, engine_url, clock=lambda: now[0], sites=(SITE, OTHER_SITE),
                     geoip_db=geo, trusted_proxies=PROXIES) as client:
        for visitor in VISITORS:
            for page in visitor.pages:
                answer = post_pageview(client, SITE, page, visitor.address, visitor.agent,
                                       visitor.referrer)
                assert answer.status_code == 202 and "x-collector-dropped" not in answer.headers
                now[0] += 30
        bot = post_pageview(client, SITE, "/", "198.51.100.99", BOTS[0][0])
        assert bot.headers["x-collector-dropped"] == "bot"
        post_pageview(client, OTHER_SITE, "/elsewhere", "198.51.100.7", VISITORS[0].agent)
    # Leaving the block stopped the app, which wrote what it held (events, visits, drops).
    yield


DAY = TimeRange(int(START.replace(hour=0).timestamp()),
                int(START.replace(hour=0).timestamp()) + 86400 - 1, interval_s=3600)


def run(store: Store, query: Query, picked: TimeRange = DAY, site: str = SITE,
        k: int = 1) -> list[dict[str, Any]]:
    columns, rows = store.query(grafana_sql(query.sql, picked, {"site": site, "k": str(k)}))
    return [dict(zip(columns, row)) for row in rows]


def panel_query(title: str) -> Query:
    (query,) = [query for query in QUERIES if query.title == title]
    return query


def epoch(moment: datetime) -> float:
    """Seconds since the epoch of a DateTime('UTC') value, naive or not."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def by_label(rows: list[dict[str, Any]], label: str, value: str) -> dict[str, Any]:
    return {row[label]: row[value] for row in rows}


@pytest.mark.usefixtures("traffic")
@pytest.mark.parametrize("query", QUERIES, ids=lambda query: query.title)
def test_every_query_runs_on_the_real_schema(store: Store, query: Query) -> None:
    rows = run(store, query)
    assert rows, query.title
    if query.timeseries:
        assert all(isinstance(row["time"], datetime) for row in rows)
    # Another site's dashboard shows nothing of this one's traffic, and a quote in a site
    # name stays inside the string.
    if not query.title.startswith("variable"):
        for site in (OTHER_SITE, "it's.test"):
            elsewhere = run(store, query, site=site)
            assert all(SITE not in repr(row) for row in elsewhere)


@pytest.mark.usefixtures("traffic")
def test_the_site_variable_offers_the_configured_sites(store: Store) -> None:
    offered = [row["site"] for row in run(store, panel_query("variable site"))]
    assert offered == sorted([SITE, OTHER_SITE])


@pytest.mark.usefixtures("traffic")
def test_visitors_and_pageviews_over_time_add_up_to_the_traffic_sent(store: Store) -> None:
    rows = run(store, panel_query("Visitors and pageviews"))
    assert sum(row["Pageviews"] for row in rows) == PAGEVIEWS
    assert sum(row["Visitors"] for row in rows) == len(VISITORS)  # all within one hour
    assert [epoch(row["time"]) for row in rows] == [START.timestamp()]
    minutes = run(store, panel_query("Visitors and pageviews"), TimeRange(DAY.start, DAY.end))
    assert sum(row["Pageviews"] for row in minutes) == PAGEVIEWS and len(minutes) == 3
    before = TimeRange(DAY.start, int(START.timestamp()) - 1)
    assert run(store, panel_query("Visitors and pageviews"), before) == []


@pytest.mark.usefixtures("traffic")
def test_the_top_stats_equal_the_reports(store: Store) -> None:
    (visitors,) = run(store, panel_query("Visitors"))
    (pageviews,) = run(store, panel_query("Pageviews"))
    (visits,) = run(store, panel_query("Visits"))
    spec = parse_query({"site_id": SITE, "date_range": [START.date().isoformat()] * 2,
                        "metrics": ["visitors", "pageviews", "visits", "bounce_rate",
                                    "visit_duration"]})
    (reported,) = run_report(store, spec, SiteContext(SITE), datetime.now(UTC)).results
    assert [visitors["Visitors"], pageviews["Pageviews"], visits["Visits"],
            round(visits["Bounce rate"] * 100), round(visits["Visit duration"])] == \
        reported["metrics"]
    assert reported["metrics"][:4] == [len(VISITORS), PAGEVIEWS, len(VISITORS), 75]
    assert visits["Views per visit"] == PAGEVIEWS / len(VISITORS)


@pytest.mark.usefixtures("traffic")
def test_top_pages_count_the_paths_sent_and_k_leaves_rare_ones_out(store: Store) -> None:
    pages = run(store, panel_query("Top pages"))
    assert [(row["Page"], row["Visitors"], row["Pageviews"]) for row in pages] == [
        ("/", 2, 2), ("/pricing", 2, 2), ("/blog/hello", 1, 1)]
    assert [row["Page"] for row in run(store, panel_query("Top pages"), k=2)] == \
        ["/", "/pricing"]


@pytest.mark.usefixtures("traffic")
def test_sources_countries_and_devices_break_the_visits_down(store: Store) -> None:
    sources = by_label(run(store, panel_query("Sources")), "Source", "Visits")
    assert sources["Direct / None"] == 2 and sources["Google"] == 1
    assert sum(sources.values()) == len(VISITORS)
    countries = by_label(run(store, panel_query("Countries")), "Country", "Visitors")
    assert countries == {"US": 2, "SE": 1, "DE": 1}
    devices = by_label(run(store, panel_query("Devices")), "Device", "Visitors")
    assert devices == {"Desktop": 3, "Mobile": 1}
    assert by_label(run(store, panel_query("Countries"), k=2), "Country", "Visitors") == \
        {"US": 2}


@pytest.mark.usefixtures("traffic")
def test_drops_by_reason_show_the_bot(store: Store) -> None:
    assert run(store, panel_query("Drops by reason")) == [{"Reason": "bot", "Drops": 1}]
    (bucket,) = run(store, panel_query("Drops over time"), TimeRange(DAY.start, DAY.end))
    assert (epoch(bucket["time"]), bucket["Reason"], bucket["Drops"]) == \
        (START.timestamp(), "bot", 1)


@pytest.mark.parametrize("sql", [
    "SELECT 1 WHERE $__dateFilter(day)",  # a macro of the plugin's this file does not use
    "SELECT 1 WHERE $__timeFilter_ms(a, b)",
    "SELECT 1 WHERE $__timeFilter",  # no column
    "SELECT 1 WHERE $__timeFilter(a, b)",
    "SELECT $__fromTime(1)",
    "SELECT 1 WHERE site = ${nothing}",
    "SELECT 1 WHERE site = ${site:csv}",
    "SELECT 1 WHERE site = $unknown",
])
def test_a_macro_or_variable_left_unknown_fails(sql: str) -> None:
    with pytest.raises(AssertionError):
        grafana_sql(sql, DAY, {"site": SITE})


def test_the_substitution_expands_as_the_plugin_does() -> None:
    picked = TimeRange(100, 200, interval_s=0)
    assert grafana_sql("$__timeFilter(t) AND s = ${site:singlequote} AND k >= ${k}", picked,
                       {"site": "it's", "k": "5"}) == \
        "t >= toDateTime(100) AND t <= toDateTime(200) AND s = 'it\\'s' AND k >= 5"
    assert grafana_sql("$__timeFilter_ms(t)", picked, {}) == (
        "t >= fromUnixTimestamp64Milli(100000) AND t <= fromUnixTimestamp64Milli(200000)")
    assert grafana_sql("$__timeInterval(t), $__interval_s, $__fromTime, $__toTime", picked,
                       {}) == ("toStartOfInterval(toDateTime(t), INTERVAL 1 second), 1, "
                               "toDateTime(100), toDateTime(200)")
