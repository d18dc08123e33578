// The dashboard: everything it shows comes from the query API (POST /api/v2/query),
// the realtime and drops endpoints, with the page's session cookie or its share token.
// The view (range, comparison, interval, filters, tabs) lives in the URL, so any view
// can be bookmarked and shared. Data is only ever written with textContent.

import { renderChart } from "./chart.js";

const root = document.getElementById("dashboard");
const config = {
  site: root.dataset.site,
  sites: JSON.parse(root.dataset.sites || "[]"),
  mode: root.dataset.mode,
  token: root.dataset.token || "",
  timezone: root.dataset.timezone || "UTC",
  city: root.dataset.city === "1",
  attribution: root.dataset.attribution || "",
  publicK: Number(root.dataset.publicK || "1"),
};

const PERIODS = [
  ["day", "Today"], ["24h", "Last 24 hours"], ["7d", "Last 7 days"], ["28d", "Last 28 days"],
  ["30d", "Last 30 days"], ["month", "This month"], ["6mo", "Last 6 months"],
  ["12mo", "Last 12 months"], ["year", "This year"], ["all", "All time"],
  ["custom", "Custom range…"],
];
const INTERVALS = [["hour", "Hours"], ["day", "Days"], ["week", "Weeks"], ["month", "Months"]];
const STATS = [
  ["visitors", "Unique visitors"], ["visits", "Total visits"], ["pageviews", "Pageviews"],
  ["views_per_visit", "Views per visit"], ["bounce_rate", "Bounce rate"],
  ["visit_duration", "Visit duration"],
];
// Views per visit are not defined under a page filter (Plausible's rule, answered 400).
const NOT_UNDER_PAGE_FILTER = new Set(["views_per_visit"]);
// Metrics where a fall is good news: their change is coloured the other way round.
const LOWER_IS_BETTER = new Set(["bounce_rate"]);
const VISIT_METRICS = ["visitors", "percentage"];
const PANELS = [
  { id: "sources", title: "Sources", tabs: [
    ["visit:channel", "Channels"], ["visit:source", "Sources"], ["visit:referrer", "Referrers"],
    ["visit:utm_source", "UTM sources"], ["visit:utm_medium", "UTM mediums"],
    ["visit:utm_campaign", "UTM campaigns"], ["visit:utm_content", "UTM contents"],
    ["visit:utm_term", "UTM terms"]] },
  { id: "pages", title: "Pages", tabs: [
    ["event:page", "Top pages", ["visitors", "pageviews"]],
    ["visit:entry_page", "Entry pages", ["visitors", "visits"]],
    ["visit:exit_page", "Exit pages", ["visitors", "visits"]]] },
  { id: "locations", title: "Locations", geo: true, tabs: [
    ["visit:country", "Countries"], ["visit:region", "Regions"],
    ...(config.city ? [["visit:city", "Cities"]] : [])] },
  { id: "devices", title: "Devices", tabs: [
    ["visit:browser", "Browsers"], ["visit:os", "Operating systems"],
    ["visit:device", "Devices"], ["visit:screen", "Screen sizes"]] },
  { id: "languages", title: "Languages", tabs: [["visit:language", "Languages"]] },
  { id: "isps", title: "ISPs", geo: true, tabs: [["visit:isp", "Networks"]] },
  { id: "goals", title: "Goals", tabs: [
    ["event:goal", "Goals", ["visitors", "events", "conversion_rate"]],
    ["props", "Properties", ["visitors", "events"]]] },
];
const METRIC_LABELS = {
  visitors: "Visitors", visits: "Visits", pageviews: "Pageviews", events: "Events",
  percentage: "%", conversion_rate: "Conversion", bounce_rate: "Bounce rate",
  visit_duration: "Duration", views_per_visit: "Views/visit", count: "Requests",
};
const DIMENSION_LABELS = {
  "visit:channel": "Channel", "visit:source": "Source", "visit:referrer": "Referrer",
  "visit:utm_source": "UTM source", "visit:utm_medium": "UTM medium",
  "visit:utm_campaign": "UTM campaign", "visit:utm_content": "UTM content",
  "visit:utm_term": "UTM term", "event:page": "Page", "visit:entry_page": "Entry page",
  "visit:exit_page": "Exit page", "visit:country": "Country", "visit:region": "Region",
  "visit:city": "City", "visit:browser": "Browser", "visit:os": "Operating system",
  "visit:device": "Device", "visit:screen": "Screen size", "visit:language": "Language",
  "visit:isp": "Network", "event:goal": "Goal",
};
const DROP_REASONS = [
  ["bot", "Bots and crawlers"], ["spam", "Referrer spam"], ["opt-out", "Opted out (DNT / GPC)"],
  ["excluded", "Excluded addresses or paths"], ["prefetch", "Prefetches"],
];
const OTHER = "(other)";
const ROWS = 10;
const REALTIME_SECONDS = 30;
const regionNames = typeof Intl.DisplayNames === "function"
  ? new Intl.DisplayNames(["en"], { type: "region" }) : null;
const numberFormat = new Intl.NumberFormat("en-US");

// ---------------------------------------------------------------- the view and the URL

function readView() {
  const params = new URLSearchParams(location.search);
  const period = PERIODS.some(([id]) => id === params.get("period")) ? params.get("period") : "30d";
  const filters = [];
  for (const [name, value] of params) {
    if (name.startsWith("f.")) filters.push({ dimension: name.slice(2), value });
  }
  const tabs = {};
  for (const panel of PANELS) {
    const chosen = params.get(`tab.${panel.id}`);
    tabs[panel.id] = panel.tabs.some(([id]) => id === chosen) ? chosen : panel.tabs[0][0];
  }
  return {
    period, from: params.get("from") || "", to: params.get("to") || "",
    compare: params.get("compare") === "1",
    interval: INTERVALS.some(([id]) => id === params.get("interval")) ? params.get("interval") : "",
    metric: STATS.some(([id]) => id === params.get("metric")) ? params.get("metric") : "visitors",
    property: params.get("property") || "",
    filters, tabs,
  };
}

function writeView(replace = false) {
  const params = new URLSearchParams();
  params.set("period", view.period);
  if (view.period === "custom") { params.set("from", view.from); params.set("to", view.to); }
  if (view.compare) params.set("compare", "1");
  if (view.interval) params.set("interval", view.interval);
  if (view.metric !== "visitors") params.set("metric", view.metric);
  if (view.property) params.set("property", view.property);
  for (const panel of PANELS) {
    if (view.tabs[panel.id] !== panel.tabs[0][0]) params.set(`tab.${panel.id}`, view.tabs[panel.id]);
  }
  for (const filter of view.filters) params.append(`f.${filter.dimension}`, filter.value);
  const url = `${location.pathname}?${params}`;
  if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
}

let view = readView();

function dateRange() {
  if (view.period === "custom" && view.from && view.to) return [view.from, view.to];
  return view.period === "custom" ? "30d" : view.period;
}

function interval() {
  if (view.interval) return view.interval;
  if (view.period === "day" || view.period === "24h") return "hour";
  if (["6mo", "12mo", "year", "all"].includes(view.period)) return "month";
  if (view.period === "custom" && view.from && view.to) {
    const days = (Date.parse(view.to) - Date.parse(view.from)) / 86400000 + 1;
    return days <= 2 ? "hour" : days <= 92 ? "day" : "month";
  }
  return "day";
}

// Every query may read the visitor sample on large ranges (include.sample): under a
// filter that is what keeps a click under half a second on millions of events, and the
// range line says when numbers are estimates.
function query(metrics, dimensions = [], extra = {}) {
  return {
    site_id: config.site, date_range: dateRange(), metrics, dimensions,
    filters: view.filters.map((filter) => ["is", filter.dimension, [filter.value]]),
    ...extra,
    include: { sample: true, ...(extra.include || {}) },
  };
}

// ---------------------------------------------------------------- talking to the API

async function api(path, body, { csv = false, method = "POST" } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (config.token) headers.Authorization = `Bearer ${config.token}`;
  if (csv) headers.Accept = "text/csv";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: method === "POST" ? JSON.stringify(body) : undefined,
  });
  if (response.status === 401) {
    if (config.mode === "key") location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    throw new Error("not signed in");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const error = await response.json();
      message = error.field ? `${error.error} (${error.field})` : error.error;
    } catch { /* not JSON: keep the status line */ }
    throw new Error(message);
  }
  return csv ? response.blob() : response.json();
}

// ---------------------------------------------------------------- formatting

function formatMetric(metric, value) {
  if (value === null || value === undefined) return "—";
  if (metric === "visit_duration") return duration(value);
  if (["bounce_rate", "conversion_rate", "percentage"].includes(metric)) return `${value}%`;
  if (metric === "views_per_visit") return String(value);
  return numberFormat.format(value);
}

function duration(seconds) {
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes}m ${String(whole % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
}

function compactNumber(value) {
  if (value >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (value >= 1e4) return `${+(value / 1e3).toFixed(1)}k`;
  return numberFormat.format(Math.round(value * 100) / 100);
}

function changeText(metric, change) {
  if (change === null || change === undefined) return "";
  const unit = ["bounce_rate", "conversion_rate", "percentage"].includes(metric) ? " pp" : "%";
  const arrow = change > 0 ? "↑" : change < 0 ? "↓" : "→";
  return `${arrow} ${Math.abs(change)}${unit}`;
}

function valueLabel(dimension, value) {
  // An empty value (no referrer, no UTM tag, a property an event lacks) still needs a name.
  if (value === "") return "(none)";
  if (dimension === "visit:country" && regionNames && /^[A-Z]{2}$/.test(value)) {
    try { return regionNames.of(value) || value; } catch { return value; }
  }
  return value;
}

function bucketLabel(label, short) {
  const text = String(label);
  if (text.length > 10) return short ? text.slice(11, 16) : text.slice(0, 16);
  const date = new Date(`${text}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) return text;
  const options = interval() === "month" ? { month: "short", year: "numeric" }
    : { day: "numeric", month: "short", ...(short ? {} : { weekday: "short", year: "numeric" }) };
  const formatted = date.toLocaleDateString("en-GB", { ...options, timeZone: "UTC" });
  return interval() === "week" && !short ? `Week of ${formatted}` : formatted;
}

function element(name, attributes = {}, ...children) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children);
  return node;
}

// ---------------------------------------------------------------- layout

const parts = {};

function buildLayout() {
  const siteSlot = document.getElementById("site-slot");
  if (config.mode === "key") {
    const picker = element("select", { id: "site-picker", "aria-label": "Site",
      onchange: (event) => location.assign(`/dashboard/${encodeURIComponent(event.target.value)}` +
                                           location.search) });
    for (const site of config.sites) {
      picker.append(element("option", { value: site, selected: site === config.site, text: site }));
    }
    siteSlot.append(picker, element("a", { href: "/login", className: "add-site",
                                            text: "Add a site" }));
  } else {
    siteSlot.append(element("span", { className: "site-name", text: config.site }));
  }
  parts.realtime = document.getElementById("realtime");

  if (config.mode === "share") {
    root.append(element("p", { className: "notice", id: "share-notice",
      text: `Public view of ${config.site}. Rows seen by fewer than ${config.publicK} visitors ` +
            "are grouped as (other), numbers about so few are not shown (—), and every number " +
            "carries a little random noise that keeps any one visitor from being singled out." }));
  }
  const period = element("select", { id: "period", "aria-label": "Date range",
                                      onchange: (event) => changePeriod(event.target.value) });
  for (const [id, label] of PERIODS) period.append(element("option", { value: id, text: label }));
  const from = element("input", { type: "date", id: "range-from", "aria-label": "From" });
  const to = element("input", { type: "date", id: "range-to", "aria-label": "To" });
  const apply = element("button", { type: "button", id: "range-apply", text: "Apply",
    onclick: () => {
      if (!from.value || !to.value) return;
      Object.assign(view, { period: "custom", from: from.value, to: to.value });
      changed();
    } });
  const custom = element("span", { id: "custom-range", className: "custom-range" }, from, to, apply);
  const compare = element("input", { type: "checkbox", id: "compare",
    onchange: (event) => { view.compare = event.target.checked; changed(); } });
  const controls = element("section", { className: "controls", "aria-label": "View" },
    period, custom,
    element("label", { className: "compare" }, compare, " Compare with previous period"),
    element("span", { id: "range-text", className: "range-text" }));
  Object.assign(parts, { period, from, to, custom, compare,
                         rangeText: controls.querySelector("#range-text") });

  parts.filters = element("ul", { id: "filters", className: "chips", "aria-label": "Filters" });
  parts.stats = element("section", { id: "top-stats", className: "stats", "data-panel": "top-stats",
                                      "aria-label": "Top stats" });
  for (const [metric, label] of STATS) {
    parts.stats.append(element("button", { type: "button", className: "stat",
      "data-stat": metric, "aria-pressed": "false",
      onclick: () => { view.metric = metric; changed(["timeseries", "top-stats"]); } },
      element("span", { className: "stat-label", text: label }),
      element("span", { className: "stat-value", text: "…" }),
      element("span", { className: "stat-change" })));
  }
  const intervals = element("div", { className: "intervals", role: "group",
                                     "aria-label": "Interval" });
  for (const [id, label] of INTERVALS) {
    intervals.append(element("button", { type: "button", "data-interval": id, text: label,
      "aria-pressed": "false",
      onclick: () => { view.interval = id; changed(["timeseries"]); } }));
  }
  parts.chart = element("div", { id: "chart", className: "chart" });
  parts.timeseries = element("section", { className: "panel timeseries", "data-panel": "timeseries",
                                          "aria-label": "Over time" },
    element("div", { className: "panel-head" },
      element("h2", { id: "chart-title", text: "Visitors over time" }), intervals),
    parts.chart);
  parts.intervals = intervals;

  const grid = element("div", { className: "grid" });
  parts.panels = {};
  for (const panel of PANELS) {
    const section = buildPanel(panel);
    parts.panels[panel.id] = section;
    grid.append(section);
  }
  parts.drops = element("section", { className: "panel", "data-panel": "filtered",
                                     "aria-labelledby": "drops-title" },
    element("div", { className: "panel-head" },
      element("h2", { id: "drops-title", text: "Filtered out" })),
    element("p", { className: "hint", text: "Requests not recorded in this range, by reason. " +
                                             "Counts only; not affected by filters." }),
    element("div", { className: "panel-body" }));
  grid.append(parts.drops);
  root.append(controls, parts.filters, parts.stats, parts.timeseries, grid);
  root.append(element("footer", { className: "foot",
    text: `Times in ${config.timezone}. Unique visitors are counted per day ` +
          "(a daily-rotating hash; no cookies)." }));
}

function buildPanel(panel) {
  const titleId = `${panel.id}-title`;
  const tabs = element("div", { className: "tabs", role: "tablist", "aria-labelledby": titleId });
  for (const [dimension, label] of panel.tabs) {
    tabs.append(element("button", { type: "button", role: "tab", "data-tab": dimension,
      text: label, "aria-selected": "false", id: `${panel.id}-tab-${dimension}`,
      onclick: () => { view.tabs[panel.id] = dimension; changed([panel.id]); },
      onkeydown: (event) => moveTab(event, tabs) }));
  }
  const csv = element("button", { type: "button", className: "csv", text: "CSV",
    "aria-label": `Download ${panel.title} as CSV`, onclick: () => downloadCsv(panel) });
  const section = element("section", { className: "panel", "data-panel": panel.id,
                                       "aria-labelledby": titleId },
    element("div", { className: "panel-head" },
      element("h2", { id: titleId, text: panel.title }), csv),
    tabs, element("div", { className: "panel-body", role: "tabpanel" }));
  if (panel.geo && config.attribution) section.append(attribution());
  return section;
}

function attribution() {
  const note = element("p", { className: "attribution" });
  const match = /^(.*?)\((https:\/\/[^)\s]+)\)(.*)$/.exec(config.attribution);
  if (match) {
    note.append(`${match[1]}(`, element("a", { href: match[2], rel: "noopener noreferrer",
                                                text: match[2] }), `)${match[3]}`);
  } else {
    note.textContent = config.attribution;
  }
  return note;
}

function moveTab(event, tabs) {
  const buttons = [...tabs.querySelectorAll("[role=tab]")];
  const index = buttons.indexOf(event.target);
  const moves = { ArrowRight: 1, ArrowLeft: -1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const next = buttons[(index + moves[event.key] + buttons.length) % buttons.length];
  next.focus();
  next.click();
}

// ---------------------------------------------------------------- rendering

let lastChart = null; // what the chart last drew, to redraw it at a new width
const pending = new Map(); // part id → its latest request number: older answers are dropped
let requestNumber = 0;

function begin(id, node) {
  const number = ++requestNumber;
  pending.set(id, number);
  node.dataset.state = "loading";
  node.setAttribute("aria-busy", "true");
  root.dataset.ready = "0";
  return () => pending.get(id) === number;
}

function finish(node, state) {
  node.dataset.state = state;
  node.removeAttribute("aria-busy");
  const busy = root.querySelector("[data-state=loading]");
  if (!busy) {
    root.dataset.ready = "1";
    performance.mark("dashboard-ready");
  }
}

function showError(node, container, error) {
  container.replaceChildren(element("p", { className: "error", role: "alert",
                                           text: `Could not load: ${error.message}` }));
  finish(node, "error");
}

function pageFiltered() {
  return view.filters.some((filter) => filter.dimension === "event:page");
}

// The top stats the current filters allow; the others show a dash.
function askedStats() {
  return STATS.map(([metric]) => metric)
    .filter((metric) => !(pageFiltered() && NOT_UNDER_PAGE_FILTER.has(metric)));
}

// The metric the chart shows: the chosen one, or visitors where it is not defined.
function chartMetric() {
  return askedStats().includes(view.metric) ? view.metric : "visitors";
}

async function loadStats() {
  const current = begin("top-stats", parts.stats);
  const asked = askedStats();
  const body = query(asked, [],
                     view.compare ? { include: { comparison: "previous_period" } } : {});
  parts.stats.dataset.query = JSON.stringify(body);
  try {
    const answer = await api("/api/v2/query", body);
    if (!current()) return answer;
    const row = answer.results[0] || { metrics: asked.map(() => 0) };
    STATS.forEach(([metric]) => {
      const button = parts.stats.querySelector(`[data-stat="${metric}"]`);
      const index = asked.indexOf(metric);
      const value = index < 0 ? null : row.metrics[index];
      const valueNode = button.querySelector(".stat-value");
      valueNode.textContent = index < 0 ? "—" : formatMetric(metric, value);
      valueNode.dataset.raw = value === null ? "" : String(value);
      button.disabled = index < 0;
      button.title = index < 0 ? "Not defined under a page filter" : "";
      const changeNode = button.querySelector(".stat-change");
      const change = row.comparison && index >= 0 ? row.comparison.change[index] : null;
      changeNode.textContent = view.compare ? changeText(metric, change) : "";
      changeNode.dataset.raw = change === null || change === undefined ? "" : String(change);
      const good = LOWER_IS_BETTER.has(metric) ? change < 0 : change > 0;
      changeNode.className = `stat-change ${change ? (good ? "up" : "down") : ""}`;
      if (view.compare && row.comparison) {
        changeNode.title = `previous period: ${formatMetric(metric, row.comparison.metrics[index])}`;
      }
      button.setAttribute("aria-pressed", String(metric === chartMetric()));
    });
    const range = answer.query.date_range;
    if (range.length === 2) parts.rangeText.textContent = rangeText(range, answer.meta);
    finish(parts.stats, "ready");
    return answer;
  } catch (error) {
    if (current()) {
      const slot = parts.stats.querySelector(".stats-error") ||
        parts.stats.appendChild(element("div", { className: "stats-error" }));
      showError(parts.stats, slot, error);
    }
    return null;
  }
}

function rangeText(range, meta) {
  const [start, end] = range.map((text) => new Date(text));
  const format = (date) => date.toLocaleString("en-GB", { timeZone: config.timezone,
    day: "numeric", month: "short", year: "numeric" });
  // The end is the range's last second (Plausible's form); a millisecond before it is on
  // the last day it covers, as it was when the end was the next midnight.
  const last = new Date(end.getTime() - 1);
  let text = `${format(start)} – ${format(last)}`;
  if (meta.comparison_date_range) text += ` · compared with ${meta.comparison_date_range.join(" – ")}`;
  if (meta.sample_percent) text += ` · estimated from a ${meta.sample_percent}% sample of visitors`;
  else if (meta.visitors_sample_percent) text += ` · visitors estimated from a ${meta.visitors_sample_percent}% sample`;
  return text;
}

async function loadTimeseries(stats) {
  const current = begin("timeseries", parts.timeseries);
  const bucket = `time:${interval()}`;
  const body = query([chartMetric()], [bucket], { include: { time_labels: true } });
  parts.timeseries.dataset.query = JSON.stringify(body);
  for (const button of parts.intervals.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.interval === interval()));
  }
  const label = STATS.find(([metric]) => metric === chartMetric())[1];
  document.getElementById("chart-title").textContent = `${label} over time`;
  try {
    const answer = await api("/api/v2/query", body);
    const series = [{ name: label, values: seriesValues(answer) }];
    if (view.compare) {
      const compared = await stats;
      const previousRange = compared && compared.meta.comparison_date_range;
      if (previousRange) {
        const previous = await api("/api/v2/query", { ...body, date_range: previousRange });
        series.push({ name: `${label} (previous period)`, values: seriesValues(previous),
                      dashed: true });
      }
    }
    if (!current()) return;
    const labels = answer.meta.time_labels || answer.results.map((row) => row.dimensions[0]);
    const metric = chartMetric();
    lastChart = {
      labels, series, title: `${label} over time`,
      formatValue: (value, short) => short && metric !== "visit_duration"
        ? compactNumber(value) : formatMetric(metric, value),
      formatLabel: bucketLabel,
    };
    renderChart(parts.chart, lastChart);
    parts.chart.dataset.values = JSON.stringify(series[0].values);
    finish(parts.timeseries, "ready");
  } catch (error) {
    if (current()) showError(parts.timeseries, parts.chart, error);
  }
}

function seriesValues(answer) {
  const byLabel = new Map(answer.results.map((row) => [row.dimensions[0], row.metrics[0]]));
  const labels = answer.meta.time_labels || [...byLabel.keys()];
  // A bucket the API did not answer had nobody; one it answered null (a share link's
  // bucket of too few visitors) stays null, which the chart shows as "—".
  return labels.map((label) => (byLabel.has(label) ? byLabel.get(label) : 0));
}

function panelQuery(panel, limit = ROWS) {
  const tab = panel.tabs.find(([dimension]) => dimension === view.tabs[panel.id]);
  const metrics = tab[2] || VISIT_METRICS;
  const dimension = tab[0] === "props" ? `event:props:${view.property}` : tab[0];
  return { tab, body: query(metrics, [dimension], { pagination: { limit, offset: 0 } }) };
}

async function loadPanel(panel) {
  const section = parts.panels[panel.id];
  const container = section.querySelector(".panel-body");
  for (const button of section.querySelectorAll("[role=tab]")) {
    const selected = button.dataset.tab === view.tabs[panel.id];
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    if (selected) container.setAttribute("aria-labelledby", button.id);
  }
  section.dataset.tab = view.tabs[panel.id];
  const current = begin(panel.id, section);
  try {
    if (view.tabs[panel.id] === "props" && !(await chooseProperty(section, container, current))) {
      return;
    }
    const { tab, body } = panelQuery(panel);
    section.dataset.query = JSON.stringify(body);
    const answer = await api("/api/v2/query", body);
    if (!current()) return;
    renderRows(container, body.dimensions[0], tab, answer);
    finish(section, "ready");
  } catch (error) {
    if (current()) showError(section, container, error);
  }
}

function renderRows(container, dimension, tab, answer) {
  const keep = container.querySelector(".property-picker");
  const metrics = tab[2] || VISIT_METRICS;
  if (!answer.results.length) {
    const empty = dimension === "event:goal"
      ? "No conversions in this range (goals are set with `collector goals add`)."
      : "Nothing in this range.";
    container.replaceChildren(...(keep ? [keep] : []), element("p", { className: "empty", text: empty }));
    return;
  }
  const first = dimension.startsWith("event:props:") ? "Value" : (DIMENSION_LABELS[dimension] || tab[1]);
  const head = element("tr", {}, element("th", { scope: "col", text: first }),
    ...metrics.map((metric) => element("th", { scope: "col", className: "number",
                                                text: METRIC_LABELS[metric] })));
  const top = Math.max(...answer.results.map((row) => row.metrics[0] || 0), 1);
  const body = element("tbody");
  for (const row of answer.results) {
    const value = row.dimensions[0];
    const label = valueLabel(dimension, value);
    const cell = element("td", { className: "label" });
    const bar = element("span", { className: "bar", "aria-hidden": "true" });
    bar.style.width = `${Math.round(((row.metrics[0] || 0) / top) * 100)}%`;
    if (value === OTHER) {
      cell.append(bar, element("span", { className: "other", text: value,
        title: "Rare values grouped together so that no visitor can be singled out" }));
    } else {
      cell.append(bar, element("button", { type: "button", className: "row-filter", text: label,
        title: label === value ? `Filter by ${value}` : `${value}: filter by it`,
        onclick: () => addFilter(dimension, value) }));
    }
    const line = element("tr", { "data-value": value }, cell,
      ...metrics.map((metric, index) => element("td", { className: "number",
        "data-metric": metric, "data-raw": row.metrics[index] ?? "",
        text: formatMetric(metric, row.metrics[index]) })));
    body.append(line);
  }
  const table = element("table", {}, element("thead", {}, head), body);
  container.replaceChildren(...(keep ? [keep] : []), table);
}

async function chooseProperty(section, container, current) {
  const answer = await api("/api/v2/properties", { site_id: config.site, date_range: dateRange() });
  if (!current()) return false;
  const keys = answer.results.map((row) => row.key);
  if (!keys.length) {
    container.replaceChildren(element("p", { className: "empty",
      text: "No custom properties in this range." }));
    finish(section, "ready");
    return false;
  }
  if (!keys.includes(view.property)) view.property = keys[0];
  const picker = element("select", { "aria-label": "Property", className: "property-picker",
    onchange: (event) => { view.property = event.target.value; changed(["goals"]); } });
  for (const key of keys) picker.append(element("option", { value: key, text: key,
                                                            selected: key === view.property }));
  container.replaceChildren(picker);
  return true;
}

async function loadDrops() {
  const container = parts.drops.querySelector(".panel-body");
  const current = begin("filtered", parts.drops);
  const body = { site_id: config.site, date_range: dateRange() };
  parts.drops.dataset.query = JSON.stringify(body);
  try {
    const answer = await api("/api/v2/drops", body);
    if (!current()) return;
    const counts = new Map(answer.results.map((row) => [row.reason, row.count]));
    const rows = DROP_REASONS.map(([reason, label]) => element("tr", { "data-value": reason },
      element("td", { text: label }),
      element("td", { className: "number", "data-metric": "count",
                      "data-raw": counts.get(reason) ?? "",
                      text: formatMetric("count", counts.get(reason)) })));
    container.replaceChildren(element("table", {},
      element("thead", {}, element("tr", {}, element("th", { scope: "col", text: "Reason" }),
        element("th", { scope: "col", className: "number", text: "Requests" }))),
      element("tbody", {}, ...rows)));
    finish(parts.drops, "ready");
  } catch (error) {
    if (current()) showError(parts.drops, container, error);
  }
}

async function loadRealtime() {
  try {
    const visitors = await api(`/api/v1/stats/realtime/visitors?site_id=${encodeURIComponent(config.site)}`,
                               null, { method: "GET" });
    parts.realtime.dataset.raw = visitors === null ? "" : String(visitors);
    const count = visitors === null ? "—" : numberFormat.format(visitors);
    parts.realtime.replaceChildren(element("span", { className: "pulse", "aria-hidden": "true" }),
      `${count} current visitor${visitors === 1 ? "" : "s"}`);
  } catch (error) {
    parts.realtime.textContent = "current visitors unavailable";
  }
}

async function downloadCsv(panel) {
  const { body } = panelQuery(panel, 10000);
  const blob = await api("/api/v2/query?format=csv", body, { csv: true });
  const link = element("a", { href: URL.createObjectURL(blob),
    download: `${config.site}-${body.dimensions[0].replaceAll(":", "-")}-${dateRangeName()}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function dateRangeName() {
  const range = dateRange();
  return Array.isArray(range) ? range.join("_") : range;
}

function renderFilters() {
  parts.filters.replaceChildren();
  for (const filter of view.filters) {
    const name = filter.dimension.startsWith("event:props:")
      ? `Property ${filter.dimension.slice(12)}` : (DIMENSION_LABELS[filter.dimension] || filter.dimension);
    const text = `${name} is ${valueLabel(filter.dimension, filter.value)}`;
    parts.filters.append(element("li", { className: "chip", "data-dimension": filter.dimension,
                                         "data-value": filter.value },
      element("span", { text }),
      element("button", { type: "button", text: "×", "aria-label": `Remove filter: ${text}`,
        onclick: () => removeFilter(filter) })));
  }
  if (view.filters.length > 1) {
    parts.filters.append(element("li", {}, element("button", { type: "button", className: "clear",
      text: "Clear all filters", onclick: () => { view.filters = []; changed(); } })));
  }
}

function syncControls() {
  parts.period.value = view.period;
  parts.custom.hidden = view.period !== "custom";
  parts.compare.checked = view.compare;
  if (view.period === "custom") {
    parts.from.value = view.from;
    parts.to.value = view.to;
  }
}

// ---------------------------------------------------------------- changes

function addFilter(dimension, value) {
  view.filters = [...view.filters.filter((filter) => filter.dimension !== dimension),
                  { dimension, value }];
  changed();
}

function removeFilter(removed) {
  view.filters = view.filters.filter((filter) => filter !== removed);
  changed();
}

function changePeriod(period) {
  if (period === "custom") {
    parts.custom.hidden = false;
    const today = new Intl.DateTimeFormat("en-CA", { timeZone: config.timezone }).format(new Date());
    if (!parts.to.value) parts.to.value = today;
    if (!parts.from.value) {
      parts.from.value = new Date(Date.parse(today) - 29 * 86400000).toISOString().slice(0, 10);
    }
    parts.from.focus();
    return;
  }
  Object.assign(view, { period, from: "", to: "", interval: "" });
  changed();
}

// Reload what a change affects (everything by default), after recording it in the URL.
function changed(only = null, { push = true } = {}) {
  if (push) writeView();
  refresh(only);
}

function refresh(only = null) {
  syncControls();
  renderFilters();
  const wanted = (id) => !only || only.includes(id);
  const stats = wanted("top-stats") ? loadStats() : Promise.resolve(null);
  if (wanted("timeseries")) loadTimeseries(view.compare ? stats : Promise.resolve(null));
  for (const panel of PANELS) if (wanted(panel.id)) loadPanel(panel);
  if (!only) loadDrops();
}

buildLayout();
writeView(true);
refresh();
loadRealtime();
// A share link pays from its privacy budget for each new count (docs/privacy.md): it asks
// once per page load instead of every half minute.
if (config.mode !== "share") setInterval(loadRealtime, REALTIME_SECONDS * 1000);
window.addEventListener("popstate", () => { view = readView(); refresh(); });
let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (lastChart) renderChart(parts.chart, lastChart); }, 150);
});
