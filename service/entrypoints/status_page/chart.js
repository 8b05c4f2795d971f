// The throughput chart: one inline SVG, drawn from the per-minute buckets of api/throughput.
const SVG = "http://www.w3.org/2000/svg";

export const SERIES = [
  { key: "events", label: "events/min", value: (b) => b.events },
  { key: "done", label: "commands done/min", value: (b) => b.commands_done },
  { key: "failed", label: "failures/min", value: (b) => b.commands_failed },
];

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

// A round upper bound and step for the y axis: 1, 2 or 5 times a power of ten.
function niceScale(max, ticks = 4) {
  if (max <= 0) return { top: ticks, step: 1 };
  const raw = max / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const whole = Math.max(1, Math.round(step));
  return { top: Math.ceil(max / whole) * whole, step: whole };
}

function hhmm(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}

export function drawChart(container, buckets) {
  const width = Math.max(280, container.clientWidth || 600);
  const height = Math.max(160, container.clientHeight || 240);
  const pad = { left: 40, right: 14, top: 12, bottom: 28 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": "throughput per minute over the last hour",
    "data-testid": "chart-svg",
  });
  const times = buckets.map((b) => new Date(b.minute).getTime());
  const t0 = times[0] ?? Date.now() - 3600e3;
  const t1 = times[times.length - 1] ?? Date.now();
  const span = Math.max(60e3, t1 - t0);
  const max = Math.max(0, ...buckets.flatMap((b) => SERIES.map((s) => s.value(b))));
  const { top, step } = niceScale(max);
  const x = (t) => pad.left + ((t - t0) / span) * plotW;
  const y = (v) => pad.top + plotH - (v / top) * plotH;

  // grid and y axis
  const grid = el("g", { class: "grid" }, svg);
  const yAxis = el("g", { class: "axis y", "data-testid": "y-axis" }, svg);
  for (let v = 0; v <= top; v += step) {
    el("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }, grid);
    const label = el("text", { x: pad.left - 8, y: y(v) + 4, "text-anchor": "end" }, yAxis);
    label.textContent = String(v);
  }
  // x axis: a label every 10 minutes (15 when narrow), on whole minutes of the clock
  const xAxis = el("g", { class: "axis x", "data-testid": "x-axis" }, svg);
  el("line", { x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0) }, xAxis);
  const every = (plotW < 420 ? 20 : 10) * 60e3;
  for (let t = Math.ceil(t0 / every) * every; t <= t1; t += every) {
    el("line", { x1: x(t), x2: x(t), y1: y(0), y2: y(0) + 4 }, xAxis);
    const label = el("text", { x: x(t), y: height - 8, "text-anchor": "middle" }, xAxis);
    label.textContent = hhmm(new Date(t));
  }

  // Failures last in the legend but drawn first: on the shared zero line the others show.
  for (const series of [...SERIES].reverse()) {
    const g = el("g", { class: `series ${series.key}`, "data-testid": `series-${series.key}` }, svg);
    const points = buckets.map((b, i) => [x(times[i]), y(series.value(b))]);
    if (points.length === 0) continue;
    const line = points.map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`);
    const base = y(0).toFixed(1);
    el("path", {
      class: "area",
      d: `${line.join(" ")} L${points[points.length - 1][0].toFixed(1)},${base} L${points[0][0].toFixed(1)},${base} Z`,
    }, g);
    el("path", { class: "line", d: line.join(" "), "data-testid": `line-${series.key}` }, g);
    // A point for each minute with work in it, so a single busy minute is visible too.
    buckets.forEach((b, i) => {
      const v = series.value(b);
      if (v <= 0) return;
      const dot = el("circle", { cx: points[i][0], cy: points[i][1], r: 3 }, g);
      const tip = el("title", {}, dot);
      tip.textContent = `${hhmm(new Date(times[i]))}  ${v} ${series.label}`;
    });
  }
  container.replaceChildren(svg);
}
