// qkdnet live network view: polls view.json once a second and redraws the graph, the selected
// link's history, alerts, relays and faults. No framework, nothing fetched from elsewhere.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const token = new URLSearchParams(window.location.search).get("token") || "";
const POLL_MS = 1000;
let selected = null;

function svg(tag, attributes, parent) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (parent) parent.appendChild(element);
  return element;
}

function colourClass(link, threshold) {
  if (link.state === "cut" || link.state === "down") return "off";
  if (link.blocks_aborted > 0 && link.qber > threshold) return "bad";
  if (link.qber >= 0.05) return "warn";
  return "ok";
}

function drawGraph(view) {
  const graph = document.getElementById("graph");
  graph.replaceChildren();
  const at = {};
  for (const node of view.nodes) at[node.name] = [40 + node.x * 920, 40 + node.y * 620];
  for (const link of view.links) {
    const [x1, y1] = at[link.u], [x2, y2] = at[link.v];
    const line = svg("line", {
      id: "link-" + link.name, x1, y1, x2, y2, "stroke-width": 3 + 14 * link.pool_fraction,
      class: "link " + colourClass(link, view.qber_threshold) + (link.name === selected ? " selected" : ""),
      "data-state": link.state, "data-qber": link.qber, "data-pool-bits": link.pool_bits,
    }, graph);
    line.addEventListener("click", () => { selected = link.name; refresh(); });
    svg("title", {}, line).textContent =
      `${link.name}: ${link.state}, QBER ${(100 * link.qber).toFixed(2)} %, pool ${link.pool_bits} bits`;
    const label = svg("text", { x: (x1 + x2) / 2 + 6, y: (y1 + y2) / 2 - 6, class: "label" }, graph);
    label.textContent = `${(100 * link.qber).toFixed(1)} %`;
  }
  for (const node of view.nodes) {
    const [x, y] = at[node.name];
    const group = svg("g", { id: "node-" + node.name, class: "node" + (node.alive ? "" : " down"),
                             "data-alive": node.alive }, graph);
    svg("circle", { cx: x, cy: y, r: 16 }, group);
    svg("text", { x: x + 20, y: y + 6 }, group).textContent = node.name;
  }
}

function drawSeries(view) {
  const chart = document.getElementById("series");
  chart.replaceChildren();
  const link = view.links.find((l) => l.name === selected) || view.links[0];
  if (!link) return;
  selected = link.name;
  document.getElementById("selected-link").textContent = `${link.name} (${link.state})`;
  const history = link.history;
  if (history.length < 2) return;
  const t0 = history[0].t, span = Math.max(1, history[history.length - 1].t - t0);
  // Each series on its own scale, from 0 to its largest value in the window (QBER at least 5 %).
  const poolTop = Math.max(1, ...history.map((s) => s.pool_bits));
  const qberTop = Math.max(0.05, ...history.map((s) => s.qber));
  const points = (value) => history.map((s) => `${(10 + 380 * (s.t - t0) / span).toFixed(1)},` +
                                              `${(150 - 125 * Math.min(1, value(s))).toFixed(1)}`).join(" ");
  svg("polyline", { class: "pool", points: points((s) => s.pool_bits / poolTop) }, chart);
  svg("polyline", { class: "qber", points: points((s) => s.qber / qberTop) }, chart);
  svg("text", { x: 10, y: 16, class: "label" }, chart).textContent = `pool ≤ ${poolTop} bits`;
  svg("text", { x: 390, y: 16, class: "label", "text-anchor": "end" }, chart).textContent =
    `QBER ≤ ${(100 * qberTop).toFixed(1)} %`;
  svg("text", { x: 10, y: 158, class: "label" }, chart).textContent = `last ${span.toFixed(0)} s`;
}

function fillList(id, items, text, cls) {
  const list = document.getElementById(id);
  list.replaceChildren();
  for (const item of items) {
    const entry = document.createElement("li");
    entry.textContent = text(item);
    if (cls) entry.className = cls(item);
    list.appendChild(entry);
  }
  if (!items.length) {
    const entry = document.createElement("li");
    entry.textContent = "none";
    list.appendChild(entry);
  }
}

function draw(view) {
  document.getElementById("topology").textContent = view.topology;
  document.getElementById("clock").textContent = `t = ${view.t.toFixed(0)} s`;
  drawGraph(view);
  drawSeries(view);
  fillList("alerts", view.alerts, (a) => a.what, (a) => a.severity);
  fillList("relays", view.relays, (r) => r.ok
    ? `${r.source} → ${r.destination}: ${r.keys} key(s) via ${r.path.join("-")} in ${r.latency_ms} ms`
    : `${r.source} → ${r.destination}: failed (${r.error})`, (r) => (r.ok ? "" : "warning"));
  fillList("faults", view.faults, (f) => `${new Date(f.at * 1000).toLocaleTimeString()} ${f.fault} ${f.link}` +
                                         (f.detail ? ` (${f.detail})` : ""));
}

async function refresh() {
  const status = document.getElementById("connection");
  try {
    const reply = await fetch("view.json", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (!reply.ok) throw new Error((await reply.json()).message || reply.statusText);
    draw(await reply.json());
    status.textContent = "live";
    status.className = "live";
  } catch (error) {
    status.textContent = "not connected: " + error.message;
    status.className = "stale";
  }
}

refresh();
setInterval(refresh, POLL_MS);
