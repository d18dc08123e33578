// A line chart in SVG, written for this dashboard: one or two series over labelled
// buckets, exact values on hover and from the keyboard (arrow keys), and a hidden
// table with every value for screen readers. Values are only ever written as text.

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 240;
const MARGIN = { top: 12, right: 16, bottom: 28, left: 56 };

function svgElement(name, attributes = {}) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

// Round tick steps (1, 2, 5 × 10^n) so the axis reads 0, 250, 500 rather than 0, 237, 474.
export function niceTicks(maximum, count = 4) {
  if (!(maximum > 0)) return [0, 1];
  const rough = maximum / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((factor) => factor * power).find((s) => s >= rough);
  const ticks = [];
  for (let value = 0; value <= maximum + step * 0.999; value += step) ticks.push(value);
  return ticks;
}

// Draws into `container` (emptied first). `series`: [{name, values, dashed}], values
// aligned with `labels`; `formatValue` and `formatLabel` turn numbers and labels into text.
export function renderChart(container, { labels, series, formatValue, formatLabel, title }) {
  container.replaceChildren();
  const width = Math.max(280, container.clientWidth || 600);
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const maximum = Math.max(0, ...series.flatMap((line) => line.values.filter(Number.isFinite)));
  const ticks = niceTicks(maximum);
  const top = ticks[ticks.length - 1] || 1;
  const x = (index) => MARGIN.left + (labels.length > 1 ? (index * plotWidth) / (labels.length - 1)
                                                          : plotWidth / 2);
  const y = (value) => MARGIN.top + plotHeight - (value / top) * plotHeight;

  const svg = svgElement("svg", { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`,
                                   role: "img", tabindex: 0, class: "chart-svg" });
  svg.setAttribute("aria-label", `${title}: chart of ${labels.length} points; ` +
                   "use the arrow keys for exact values");
  for (const tick of ticks) {
    svg.append(svgElement("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(tick),
                                    y2: y(tick), class: "grid" }));
    const text = svgElement("text", { x: MARGIN.left - 8, y: y(tick) + 4, class: "axis",
                                      "text-anchor": "end" });
    text.textContent = formatValue(tick, true);
    svg.append(text);
  }
  const labelEvery = Math.max(1, Math.ceil(labels.length / Math.max(2, Math.floor(plotWidth / 90))));
  labels.forEach((label, index) => {
    if (index % labelEvery !== 0) return;
    const text = svgElement("text", { x: x(index), y: HEIGHT - 8, class: "axis",
                                      "text-anchor": "middle" });
    text.textContent = formatLabel(label, true);
    svg.append(text);
  });
  series.forEach((line, number) => {
    const points = line.values.map((value, index) =>
      `${index ? "L" : "M"}${x(index).toFixed(1)},${y(Number.isFinite(value) ? value : 0).toFixed(1)}`);
    if (points.length) {
      svg.append(svgElement("path", { d: points.join(""), class: `line line-${number}` +
                                      (line.dashed ? " dashed" : "") }));
    }
  });
  const cursor = svgElement("line", { y1: MARGIN.top, y2: MARGIN.top + plotHeight,
                                      class: "cursor", visibility: "hidden" });
  const dot = svgElement("circle", { r: 4, class: "dot", visibility: "hidden" });
  svg.append(cursor, dot);

  const tooltip = document.createElement("div");
  tooltip.className = "tooltip";
  tooltip.hidden = true;
  tooltip.setAttribute("role", "status");
  container.append(svg, tooltip, hiddenTable(labels, series, formatValue, formatLabel, title));

  let current = -1;
  function show(index) {
    if (!labels.length) return;
    current = Math.max(0, Math.min(labels.length - 1, index));
    const left = x(current);
    cursor.setAttribute("x1", left);
    cursor.setAttribute("x2", left);
    cursor.setAttribute("visibility", "visible");
    const value = series[0].values[current];
    dot.setAttribute("cx", left);
    dot.setAttribute("cy", y(Number.isFinite(value) ? value : 0));
    dot.setAttribute("visibility", "visible");
    tooltip.replaceChildren();
    const heading = document.createElement("strong");
    heading.textContent = formatLabel(labels[current], false);
    tooltip.append(heading);
    for (const line of series) {
      const row = document.createElement("div");
      row.textContent = `${line.name}: ${formatValue(line.values[current], false)}`;
      tooltip.append(row);
    }
    tooltip.hidden = false;
    tooltip.dataset.index = String(current);
    const room = container.clientWidth || width;
    tooltip.style.left = `${Math.min(Math.max(0, left - 80), Math.max(0, room - 180))}px`;
  }
  function hide() {
    current = -1;
    tooltip.hidden = true;
    cursor.setAttribute("visibility", "hidden");
    dot.setAttribute("visibility", "hidden");
  }
  svg.addEventListener("mousemove", (event) => {
    const box = svg.getBoundingClientRect();
    const position = ((event.clientX - box.left) * width) / box.width;
    const step = labels.length > 1 ? plotWidth / (labels.length - 1) : plotWidth;
    show(Math.round((position - MARGIN.left) / step));
  });
  svg.addEventListener("mouseleave", hide);
  svg.addEventListener("blur", hide);
  svg.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity };
    if (event.key === "Escape") hide();
    if (!(event.key in moves)) return;
    event.preventDefault();
    const move = moves[event.key];
    show(Number.isFinite(move) ? (current < 0 ? 0 : current + move)
                               : (move < 0 ? 0 : labels.length - 1));
  });
}

function hiddenTable(labels, series, formatValue, formatLabel, title) {
  const table = document.createElement("table");
  table.className = "visually-hidden";
  const caption = document.createElement("caption");
  caption.textContent = title;
  const head = document.createElement("tr");
  for (const name of ["Period", ...series.map((line) => line.name)]) {
    const cell = document.createElement("th");
    cell.scope = "col";
    cell.textContent = name;
    head.append(cell);
  }
  const body = document.createElement("tbody");
  labels.forEach((label, index) => {
    const row = document.createElement("tr");
    const first = document.createElement("th");
    first.scope = "row";
    first.textContent = formatLabel(label, false);
    row.append(first);
    for (const line of series) {
      const cell = document.createElement("td");
      cell.textContent = formatValue(line.values[index], false);
      row.append(cell);
    }
    body.append(row);
  });
  const thead = document.createElement("thead");
  thead.append(head);
  table.append(caption, thead, body);
  return table;
}
