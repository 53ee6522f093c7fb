// The explorer: reads rpc.discover, draws a form per method, calls through
// POST /rpc, and polls /metrics every second for the live panel. No
// framework, no network beyond this gateway. URLs are built from
// location.origin: a page opened with user:pass@ in its address has credentials
// in its own URL, which fetch refuses to resolve relative URLs against.
"use strict";

const ORIGIN = location.origin;
const COLORS = ["#2f6fde", "#1f7a4d", "#c2410c", "#6b3fc4", "#b3261e", "#0e7490",
  "#a16207", "#be185d", "#4d7c0f", "#1e3a8a", "#7c2d12", "#475569"];
const HISTORY = 60;

const explorer = {
  document: null,
  /** Per method: {calls, rate, p99, color}, from the last /metrics read. */
  live: new Map(),
  /** Per method: the last HISTORY calls/s values, oldest first. */
  series: new Map(),
  /** How many /metrics reads have been drawn. */
  ticks: 0,
  nextId: 1,
  /** The chart's data: {method: [calls/s, …]}, for tests and curious people. */
  chartData() {
    return Object.fromEntries(explorer.series);
  },
};
window.rpcExplorer = explorer;

async function rpc(method, params) {
  const request = { jsonrpc: "2.0", id: explorer.nextId++, method };
  if (params !== undefined) request.params = params;
  const response = await fetch(ORIGIN + "/rpc", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(request),
    credentials: "same-origin",
  });
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    return { error: { code: response.status, message: text || response.statusText } };
  }
}

/** `text` with its `code spans` as <code>, never as HTML. */
function withCode(node, text) {
  text.split("`").forEach((part, i) => {
    node.append(i % 2 ? element("code", "", part) : document.createTextNode(part));
  });
  return node;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A placeholder argument for a schema: 0, "", false, [], {} or null. */
function example(schema, components, depth = 0) {
  if (!schema || depth > 4) return null;
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return example(components[name], components, depth + 1);
  }
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "integer": case "number": return 0;
    case "string": return schema.enum ? schema.enum[0] : "";
    case "boolean": return false;
    case "array": return Array.isArray(schema.items) ? schema.items.map((s) => example(s, components, depth + 1)) : [];
    case "object": return {};
    case "null": return null;
  }
  if (schema.enum) return schema.enum[0];
  if (schema.oneOf || schema.anyOf) return example((schema.oneOf || schema.anyOf)[0], components, depth + 1);
  return null;
}

function resolveError(ref, doc) {
  if (!ref.$ref) return ref;
  return doc.components.errors[ref.$ref.split("/").pop()] || { code: "?", message: ref.$ref };
}

function showResult(output, answer) {
  if (answer.error) {
    const e = answer.error;
    let text = `error ${e.code}: ${e.message}`;
    if (e.data !== undefined) text += `\ndata: ${JSON.stringify(e.data)}`;
    output.className = "result error";
    output.textContent = text;
  } else {
    output.className = "result ok";
    output.textContent = JSON.stringify(answer.result, null, 2);
  }
}

function methodCard(method, doc) {
  const card = document.getElementById("method-template").content.firstElementChild.cloneNode(true);
  card.dataset.method = method.name;
  card.id = "method-" + method.name;
  card.querySelector(".name").textContent = method.name;
  const badges = card.querySelector(".badges");
  if (method["x-idempotent"]) badges.append(element("span", "badge", "idempotent"));
  if (method["x-stream"]) badges.append(element("span", "badge stream", "stream"));
  card.querySelector(".signature").textContent = method["x-signature"] || method.name;
  withCode(card.querySelector(".doc"), method.description || "");
  const components = (doc.components && doc.components.schemas) || {};
  const args = card.querySelector("textarea");
  args.value = JSON.stringify(method.params.map((p) => example(p.schema, components)));
  const errors = card.querySelector(".errors ul");
  for (const ref of method.errors || []) {
    const e = resolveError(ref, doc);
    errors.append(element("li", "", `${e.code} ${e.message}`));
  }
  const output = card.querySelector("output");
  const button = card.querySelector("button");
  card.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    let params;
    const text = args.value.trim();
    if (text !== "") {
      try {
        params = JSON.parse(text);
      } catch (e) {
        output.className = "result error";
        output.textContent = `the arguments are not JSON: ${e.message}`;
        return;
      }
    }
    button.disabled = true;
    output.className = "result";
    output.textContent = "calling…";
    try {
      showResult(output, await rpc(method.name, params));
    } catch (e) {
      output.className = "result error";
      output.textContent = `the call failed: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return card;
}

function render(doc) {
  explorer.document = doc;
  document.getElementById("api-title").textContent = doc.info.title;
  document.getElementById("api-version").textContent = "v" + doc.info.version;
  const section = document.getElementById("services");
  section.replaceChildren();
  const services = doc.info["x-services"] || [];
  for (const service of services) {
    section.append(element("h2", "", service.name));
    if (service.description) section.append(withCode(element("p", "service-doc"), service.description));
    for (const method of doc.methods.filter((m) => m.name.startsWith(service.name + "."))) {
      section.append(methodCard(method, doc));
    }
  }
  document.body.dataset.ready = "true";
}

/** {labels, value} of each sample of `name` in Prometheus text. */
function samples(text, name) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{")) continue;
    const close = line.lastIndexOf("}");
    const labels = {};
    for (const pair of line.slice(name.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2];
    }
    out.push({ labels, value: Number(line.slice(close + 1).trim()) });
  }
  return out;
}

/** The p99 in seconds: the upper bound of the bucket holding the 99th percentile. */
function p99(buckets) {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) || 0;
  if (total === 0) return null;
  const rank = Math.ceil(total * 0.99);
  for (const le of bounds) if (buckets.get(le) >= rank) return le;
  return Infinity;
}

function readMetrics(text, seconds) {
  const calls = new Map();
  for (const s of samples(text, "rpc_calls_total")) {
    if (!s.labels.service) continue;
    const name = `${s.labels.service}.${s.labels.method}`;
    calls.set(name, (calls.get(name) || 0) + s.value);
  }
  const buckets = new Map();
  for (const s of samples(text, "rpc_call_duration_seconds_bucket")) {
    if (!s.labels.service) continue;
    const name = `${s.labels.service}.${s.labels.method}`;
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    if (!buckets.has(name)) buckets.set(name, new Map());
    const b = buckets.get(name);
    b.set(le, (b.get(le) || 0) + s.value);
  }
  const names = new Set([...calls.keys(), ...(explorer.document ? explorer.document.methods.map((m) => m.name) : [])]);
  for (const name of names) {
    if (name.startsWith("rpc.")) continue;
    const before = explorer.live.get(name);
    const total = calls.get(name) || 0;
    const rate = before && seconds > 0 ? Math.max(0, total - before.calls) / seconds : 0;
    const color = before ? before.color : COLORS[explorer.live.size % COLORS.length];
    explorer.live.set(name, { calls: total, rate, p99: p99(buckets.get(name) || new Map()), color });
    const series = explorer.series.get(name) || [];
    series.push(Number(rate.toFixed(3)));
    if (series.length > HISTORY) series.shift();
    explorer.series.set(name, series);
  }
  explorer.ticks += 1;
}

function formatSeconds(s) {
  if (s === null) return "–";
  if (s === Infinity) return "> 10 s";
  return s < 1 ? `≤ ${(s * 1000).toPrecision(2)} ms` : `≤ ${s} s`;
}

function drawTable() {
  const body = document.querySelector("#rates tbody");
  body.replaceChildren();
  for (const [name, m] of explorer.live) {
    const row = document.createElement("tr");
    row.dataset.method = name;
    const first = element("td");
    const swatch = element("span", "swatch");
    swatch.style.background = m.color;
    first.append(swatch, name);
    row.append(first, element("td", "calls", String(m.calls)), element("td", "rate", m.rate.toFixed(1)), element("td", "p99", formatSeconds(m.p99)));
    body.append(row);
  }
}

function drawChart() {
  const canvas = document.getElementById("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const pad = { left: 34, right: 8, top: 10, bottom: 18 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  let max = 1;
  for (const series of explorer.series.values()) for (const v of series) max = Math.max(max, v);
  max = Math.ceil(max);
  g.font = "10px system-ui, sans-serif";
  g.fillStyle = "#6a7383";
  g.strokeStyle = "#e3e7ee";
  g.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const y = pad.top + plotH * (1 - f);
    g.beginPath(); g.moveTo(pad.left, y); g.lineTo(width - pad.right, y); g.stroke();
    g.fillText((max * f).toFixed(f === 0.5 && max % 2 ? 1 : 0), 4, y + 3);
  }
  g.fillText("calls/s, last 60 s", pad.left, height - 4);
  for (const [name, series] of explorer.series) {
    if (!series.length) continue;
    g.strokeStyle = explorer.live.get(name).color;
    g.lineWidth = 2;
    g.beginPath();
    series.forEach((v, i) => {
      const x = pad.left + plotW * ((HISTORY - series.length + i) / (HISTORY - 1));
      const y = pad.top + plotH * (1 - v / max);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
    const last = series[series.length - 1];
    g.fillStyle = g.strokeStyle;
    g.beginPath();
    g.arc(pad.left + plotW, pad.top + plotH * (1 - last / max), 2.5, 0, 2 * Math.PI);
    g.fill();
  }
}

async function poll() {
  let last = performance.now();
  const status = document.getElementById("live-status");
  for (;;) {
    try {
      const response = await fetch(ORIGIN + "/metrics", { credentials: "same-origin" });
      const now = performance.now();
      if (response.ok) {
        readMetrics(await response.text(), (now - last) / 1000);
        drawTable();
        drawChart();
        status.textContent = "";
      } else {
        status.textContent = `/metrics answered ${response.status}`;
      }
      last = now;
    } catch (e) {
      status.textContent = `/metrics failed: ${e.message}`;
    }
    await new Promise((done) => setTimeout(done, 1000));
  }
}

async function start() {
  try {
    const answer = await rpc("rpc.discover");
    if (answer.error) throw new Error(`${answer.error.code}: ${answer.error.message}`);
    render(answer.result);
  } catch (e) {
    document.getElementById("status").textContent = `rpc.discover failed: ${e.message}`;
  }
  poll();
}

start();
