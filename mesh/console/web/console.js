// The console's page: the graph (cytoscape.js, dagre layout) fed by /api/graph/stream,
// node details from /api/nodes/{id}, the config page from /api/config.
"use strict";

cytoscape.use(cytoscapeDagre);

const COLOURS = { healthy: "#3e8635", degraded: "#f0ab00", failure: "#c9190b",
                  idle: "#b8bbbe", unknown: "#8a8d90" };
const SHAPES = { gateway: "round-rectangle", version: "round-rectangle", service: "triangle",
                 topic: "diamond", group: "hexagon" };

const cy = cytoscape({
  container: document.getElementById("cy"),
  wheelSensitivity: 0.3,
  style: [
    { selector: "node", style: {
        label: "data(label)", "font-size": 12, "text-valign": "bottom", "text-margin-y": 4,
        shape: (n) => SHAPES[n.data("kind")] || "ellipse", width: 34, height: 34,
        "background-color": "#fff", "border-width": 2,
        "border-color": (n) => COLOURS[n.data("health")] || COLOURS.idle } },
    { selector: 'node[kind = "gateway"]', style: { width: 44, "background-color": "#e7f1fa" } },
    { selector: 'node[kind = "topic"], node[kind = "group"]',
      style: { "background-color": "#f4f0fa", width: 30, height: 30 } },
    { selector: 'node[kind = "app"]', style: {
        shape: "round-rectangle", "background-color": "#fafafa", "border-width": 1,
        "border-color": "#8a8d90", "text-valign": "top", "text-margin-y": -4,
        "font-weight": "bold", padding: 10 } },
    { selector: "node:selected", style: { "border-width": 4, "border-color": "#06c" } },
    { selector: "edge", style: {
        width: 2, "curve-style": "bezier", "target-arrow-shape": "triangle",
        "line-color": (e) => COLOURS[e.data("health")] || COLOURS.idle,
        "target-arrow-color": (e) => COLOURS[e.data("health")] || COLOURS.idle,
        label: "data(text)", "font-size": 11, "text-wrap": "wrap",
        "text-background-color": "#fff", "text-background-opacity": 0.85,
        "text-background-padding": 2 } },
    { selector: 'edge[protocol = "kafka"]', style: { "line-style": "dashed" } },
    { selector: "edge:selected", style: { width: 4 } },
  ],
});
window.meshGraph = cy; // the browser test reads what is drawn from here

let latest = null;
let selected = null;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

function edgeText(edge, outShare) {
  const mode = $("edge-labels").value;
  const t = edge.traffic;
  let text = "";
  if (mode === "rate") {
    text = edge.protocol === "kafka"
      ? (edge.lag !== null ? `lag ${edge.lag}` : `${t.rate} msg/s`)
      : `${t.rate} rps` + (t.error_percent > 0 ? `\n${t.error_percent}% err` : "");
  } else if (mode === "p99") {
    text = t.p99_ms !== null ? `${t.p99_ms} ms` : "";
  } else if (mode === "percent") {
    text = outShare !== null ? `${outShare}%` : "";
  }
  // a weight is news only where the VirtualService splits (Kiali shows it on canary edges)
  if (edge.weight !== null && edge.weight < 100 && mode !== "none") text = `⚖ ${edge.weight}%  ${text}`;
  if (edge.mtls && $("show-security").checked) text = `🔒 ${text}`;
  return text.trim();
}

function render(graph) {
  latest = graph;
  const kafka = $("show-kafka").checked;
  const nodes = graph.nodes.filter((n) => kafka || (n.kind !== "topic" && n.kind !== "group"));
  const ids = new Set(nodes.map((n) => n.id));
  const edges = graph.edges.filter((e) => ids.has(e.source) && ids.has(e.target));
  const outTotals = {};
  for (const e of edges) outTotals[e.source] = (outTotals[e.source] || 0) + e.traffic.rate;
  let changed = false;
  cy.batch(() => {
    const wanted = new Set([...ids, ...edges.map((e) => e.id)]);
    cy.elements().forEach((el) => { if (!wanted.has(el.id())) { el.remove(); changed = true; } });
    for (const n of nodes) {
      const data = { id: n.id, label: n.label, kind: n.kind, health: n.health, parent: n.parent || undefined };
      const el = cy.getElementById(n.id);
      if (el.empty()) { cy.add({ group: "nodes", data }); changed = true; } else el.data(data);
    }
    for (const e of edges) {
      const total = outTotals[e.source];
      const share = total > 0 ? Math.round((100 * e.traffic.rate) / total) : null;
      const data = { id: e.id, source: e.source, target: e.target, protocol: e.protocol,
                     health: e.health, text: edgeText(e, share), rate: e.traffic.rate };
      const el = cy.getElementById(e.id);
      if (el.empty()) { cy.add({ group: "edges", data }); changed = true; } else el.data(data);
    }
  });
  if (changed) layout();
  if (selected === null) summary(graph);
  else details(selected); // the panel follows the graph: rates, instances, config, traces
}

function layout() {
  cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 30, rankSep: 70, fit: true, padding: 30 }).run();
}

function summary(graph) {
  // what callers sent (caller -> Service edges), as Kiali's namespace summary counts it
  const calls = graph.edges.filter((e) => e.protocol === "http" && e.target.startsWith("service:"));
  const rate = calls.reduce((s, e) => s + e.traffic.rate, 0);
  const errors = calls.reduce((s, e) => s + (e.traffic.rate * e.traffic.error_percent) / 100, 0);
  const rows = graph.edges
    .filter((e) => e.protocol === "http")
    .sort((a, b) => b.traffic.rate - a.traffic.rate)
    .map((e) => `<tr data-testid="edge-row"><td>${esc(label(e.source))} → ${esc(label(e.target))}</td>
      <td class="rate">${e.traffic.rate}</td><td>${e.traffic.error_percent}%</td>
      <td>${e.traffic.p99_ms ?? "–"}</td><td>${e.mtls ? "🔒" : ""}${e.weight !== null ? ` ${e.weight}%` : ""}</td></tr>`)
    .join("");
  const kafkaRows = graph.edges.filter((e) => e.lag !== null)
    .map((e) => `<tr data-testid="lag-row"><td>${esc(label(e.source))} → ${esc(label(e.target))}</td><td>${e.lag}</td><td>${e.traffic.rate}</td></tr>`).join("");
  $("panel").innerHTML = `<h3>Namespace meshmart</h3>
    <p>HTTP requests: <b data-testid="total-rate">${rate.toFixed(2)}</b> rps,
      ${rate > 0 ? ((100 * errors) / rate).toFixed(1) : "0.0"}% 5xx (last ${graph.window_seconds} s)${graph.kafka_available ? "" : " · Kafka offsets unavailable"}</p>
    ${Object.keys(graph.down).length ? `<p class="error">Not answering: ${esc(Object.keys(graph.down).join(", "))}</p>` : ""}
    <h4>HTTP edges</h4><table><tr><th>edge</th><th>rps</th><th>err</th><th>p99 ms</th><th></th></tr>${rows}</table>
    <h4>Kafka consumer groups</h4><table><tr><th>topic → group</th><th>lag</th><th>msg/s</th></tr>${kafkaRows}</table>
    <p class="hint">Click a node for its details.</p>`;
}

function label(id) {
  const n = latest && latest.nodes.find((x) => x.id === id);
  if (!n) return id;
  return n.kind === "version" ? `${n.app} ${n.version}` : n.label;
}

async function details(id) {
  const response = await fetch(`/api/nodes/${encodeURIComponent(id)}`);
  const body = await response.json();
  if (!response.ok) { $("panel").innerHTML = `<p class="error">${esc(body.detail)}</p>`; return; }
  const edgeRows = (edges) => edges.map((e) => `<tr><td>${esc(label(e.source))} → ${esc(label(e.target))}</td>
    <td>${e.traffic.rate}</td><td>${e.traffic.error_percent}%</td><td>${e.mtls ? "🔒" : ""}</td></tr>`).join("");
  const n = body.node;
  $("panel").innerHTML = `<h3 data-testid="details-title">${esc(label(n.id))}
      <span class="badge ${n.health}">${n.health}</span></h3><p>${esc(n.kind)} · ${esc(n.id)}</p>
    <h4>Instances</h4><table><tr><th>name</th><th>app pid</th><th>sidecar pid</th><th>ready</th><th>restarts</th></tr>
      ${body.instances.map((i) => `<tr><td><a href="${i.admin_url}" target="_blank">${esc(i.name)}</a></td>
        <td>${i.app_pid || "–"}${i.app_pid && !i.app_alive ? " ✗" : ""}</td>
        <td>${i.sidecar_pid}${i.sidecar_alive ? "" : " ✗"}</td><td>${i.sidecar_ready ? "✓" : "✗"}</td>
        <td title="${esc(i.last_exit || "")}">${i.restarts}${i.last_exit ? ` (${esc(i.last_exit)})` : ""}</td></tr>`).join("")}</table>
    <h4>Inbound</h4><table>${edgeRows(body.inbound)}</table>
    <h4>Outbound</h4><table>${edgeRows(body.outbound)}</table>
    <h4>Istio config</h4>${body.resources.map((r) => `<div><span class="badge">${r.kind}</span>${esc(r.name)}
      <small>${esc(r.file || "")}</small></div>`).join("") || "none"}
    <h4>Traces</h4>${body.traces.map((t) => `<div><a href="${t.url}" target="_blank" rel="noopener">${esc(t.operation)}</a>
      ${t.duration_ms} ms, ${t.spans} spans ${t.error ? '<span class="badge failure">error</span>' : ""}</div>`).join("") || "none yet"}
    <p><a href="#" id="back">← namespace summary</a></p>`;
  $("back").onclick = (ev) => { ev.preventDefault(); selected = null; cy.elements().unselect(); if (latest) summary(latest); };
}

cy.on("tap", "node", (ev) => { selected = ev.target.id(); details(selected); });
cy.on("tap", (ev) => { if (ev.target === cy) { selected = null; if (latest) summary(latest); } });
for (const id of ["edge-labels", "show-security", "show-kafka"]) $(id).onchange = () => latest && render(latest);
$("relayout").onclick = layout;

function connect() {
  const stream = new EventSource("/api/graph/stream");
  stream.addEventListener("graph", (ev) => {
    render(JSON.parse(ev.data));
    $("live").textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    $("live").classList.remove("stale");
  });
  stream.addEventListener("problem", (ev) => {
    $("live").textContent = JSON.parse(ev.data).detail;
    $("live").classList.add("stale");
  });
  stream.onerror = () => { $("live").textContent = "reconnecting…"; $("live").classList.add("stale"); };
}

// --- Istio config page --------------------------------------------------------------

async function loadConfig() {
  const response = await fetch("/api/config");
  const body = await response.json();
  if (!response.ok) { $("config-rows").innerHTML = `<tr><td colspan="5">${esc(body.detail)}</td></tr>`; return; }
  const current = $("scenario").value;
  $("scenario").innerHTML = body.scenarios.map((s) => `<option${s === current ? " selected" : ""}>${esc(s)}</option>`).join("");
  $("config-rows").innerHTML = body.resources.map((r) => {
    const checks = r.validations.length
      ? r.validations.map((v) => `<div class="${v.severity}" data-testid="validation">${v.severity === "error" ? "✖" : "⚠"} ${esc(v.code)}: ${esc(v.message)} <small>(${esc(v.path)})</small></div>`).join("")
      : '<span class="valid">✔ valid</span>';
    return `<tr data-testid="config-row" data-name="${esc(r.name)}"><td><details><summary>${esc(r.name)}</summary>
      <pre class="doc">${esc(JSON.stringify(r.document, null, 2))}</pre></details></td>
      <td>${esc(r.kind)}</td><td>${esc(r.namespace)}</td><td>${esc(r.file || "")}</td><td>${checks}</td></tr>`;
  }).join("");
}

async function apply(body) {
  for (const b of ["apply-scenario", "apply-yaml"]) $(b).disabled = true;
  $("apply-result").className = "result";
  $("apply-result").textContent = "applying…";
  try {
    const response = await fetch("/api/config/apply", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const result = await response.json();
    if (response.ok) {
      $("apply-result").className = "result ok";
      $("apply-result").textContent = `applied ${result.applied.join(", ") || "(no change)"} in ${result.seconds} s`;
    } else {
      $("apply-result").className = "result refused";
      $("apply-result").textContent = `${response.status} ${result.title}: ${result.detail}`;
    }
  } finally {
    for (const b of ["apply-scenario", "apply-yaml"]) $(b).disabled = false;
    loadConfig();
  }
}
$("apply-scenario").onclick = () => apply({ file: $("scenario").value });
$("apply-yaml").onclick = () => apply({ yaml: $("yaml").value });

// --- pages ----------------------------------------------------------------------------

function show(page) {
  for (const a of document.querySelectorAll(".sidebar a[data-page]")) a.classList.toggle("active", a.dataset.page === page);
  $("page-graph").classList.toggle("hidden", page !== "graph");
  $("page-config").classList.toggle("hidden", page !== "config");
  if (page === "config") loadConfig(); else { cy.resize(); cy.fit(undefined, 30); }
}
window.addEventListener("hashchange", () => show(location.hash === "#config" ? "config" : "graph"));
show(location.hash === "#config" ? "config" : "graph");
fetch("/api/nodes/gateway:istio-ingressgateway").then((r) => r.json()).then((b) => {
  if (b.zipkin_url) $("zipkin-link").href = `${b.zipkin_url}/zipkin/`;
}).catch(() => {});
connect();
