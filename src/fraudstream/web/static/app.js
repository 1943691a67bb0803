// fraudstream dashboard: plain JavaScript over the JSON API (/v1/...), no build step.
// Each page's template sets <body data-page="...">; the matching function below fills it.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
const can = { review: document.body.dataset.canReview === "yes", admin: document.body.dataset.canAdmin === "yes" };

// --- helpers -------------------------------------------------------------------------------

// The page's Content-Security-Policy refuses inline style attributes; computed styles ride in data-style and
// are applied through the DOM (element.style), which the policy allows.
function setHTML(node, markup) {
  node.innerHTML = markup;
  for (const el of node.querySelectorAll("[data-style]")) {
    el.style.cssText = el.dataset.style;
    el.removeAttribute("data-style");
  }
}

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.error)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" }, ...options };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.headers = { ...init.headers, "Content-Type": "application/json" };
    init.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = { detail: text }; }
  if (response.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

const number = new Intl.NumberFormat();
function fmtInt(n) { return n == null ? "–" : number.format(n); }
function fmtMoney(amount, currency = "USD") {
  try { return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount); }
  catch { return `${Number(amount).toFixed(2)} ${currency}`; }
}
function fmtTime(ms) { return ms == null ? "–" : new Date(ms).toLocaleString(); }
function fmtShortTime(ms) { return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); }
function pill(text, kind = text) { return `<span class="pill ${esc(kind)}">${esc(text).replace("_", " ")}</span>`; }
function scoreCell(score) {
  const level = score >= 70 ? "hi" : score >= 40 ? "mid" : "";
  return `<span class="score ${level}">${esc(score)}</span>`;
}
function reasonTags(reasons, limit = 3) {
  return (reasons || []).slice(0, limit)
    .map((r) => `<span class="reason" title="${esc(r.text)}">${esc(r.code)}</span>`).join("");
}
function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 3500);
}
function svg(tag, attributes) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  return node;
}

// --- live alert stream (every page) --------------------------------------------------------

const alertListeners = [];
const connectListeners = [];
let retryDelay = 500;

function connectStream() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/v1/stream/alerts`);
  const indicator = $("#conn");
  socket.onopen = () => {
    retryDelay = 500;
    indicator.textContent = "live";
    indicator.classList.add("live");
    connectListeners.forEach((f) => f());
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "fraud_alert") alertListeners.forEach((f) => f(message));
  };
  socket.onclose = () => {
    indicator.textContent = "reconnecting…";
    indicator.classList.remove("live");
    setTimeout(connectStream, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 5000);
  };
  socket.onerror = () => socket.close();
}

async function refreshQueueCount() {
  try {
    const counts = await api("/v1/alerts/summary");
    $("#queue-count").textContent = counts.open ? String(counts.open) : "";
  } catch { /* the count is a nicety; the stream indicator shows trouble */ }
}

// --- overview ------------------------------------------------------------------------------

const MIX_COLORS = { approve: "#15803d", challenge: "#1d4ed8", review: "#b45309", decline: "#b91c1c" };
let trendWindow = "1h";

async function overviewStats() {
  const stats = await api("/v1/stats");
  $("#kpi-transactions").textContent = fmtInt(stats.transactions);
  $("#kpi-alerts").textContent = fmtInt(stats.alerts);
  $("#kpi-open").textContent = `${fmtInt(stats.open_alerts)} open`;
  $("#kpi-fraud-rate").textContent = `${(stats.fraud_rate * 100).toFixed(2)}%`;
  const d = stats.decisions;
  const share = (n) => (stats.transactions ? `${((n / stats.transactions) * 100).toFixed(1)}%` : "–");
  $("#kpi-mix").textContent = `${share(d.approve)} · ${share(d.review + d.challenge)} · ${share(d.decline)}`;
  $("#kpi-rate").textContent = stats.decisions_per_second;
  const p = stats.latency_ms;
  $("#kpi-latency").textContent = p.p50 == null ? "–" : `${p.p50.toFixed(1)} · ${p.p99.toFixed(1)} ms`;
  drawDonut(d);
  $("#top-rules").innerHTML = stats.top_rules.length
    ? stats.top_rules.map((r) => `<tr><td><a href="/ui/transactions?rule=${encodeURIComponent(r.rule)}">${esc(r.rule)}</a></td><td class="num">${fmtInt(r.hits)}</td></tr>`).join("")
    : `<tr><td colspan="2" class="muted">No rule has fired since the server started.</td></tr>`;
}

function drawDonut(mix) {
  const box = $("#mix-donut");
  const total = Object.values(mix).reduce((a, b) => a + b, 0);
  const chart = svg("svg", { viewBox: "0 0 42 42" });
  chart.appendChild(svg("circle", { cx: 21, cy: 21, r: 15.9155, fill: "none", stroke: "#e5e7eb", "stroke-width": 6 }));
  let offset = 25;
  for (const [name, n] of Object.entries(mix)) {
    if (!total || !n) continue;
    const part = (n / total) * 100;
    chart.appendChild(svg("circle", {
      cx: 21, cy: 21, r: 15.9155, fill: "none", stroke: MIX_COLORS[name], "stroke-width": 6,
      "stroke-dasharray": `${part} ${100 - part}`, "stroke-dashoffset": offset,
    }));
    offset -= part;
  }
  box.replaceChildren(chart);
  setHTML($("#mix-legend"), Object.entries(mix).map(([name, n]) =>
    `<li><span class="key" data-style="background:${MIX_COLORS[name]}"></span>${esc(name)} <strong>${fmtInt(n)}</strong></li>`).join(""));
}

async function overviewTrend() {
  const data = await api(`/v1/stats/series?window=${trendWindow}`);
  const buckets = data.buckets;
  const width = 600, height = 220, left = 36, bottom = 20;
  const peak = Math.max(1, ...buckets.map((b) => b.transactions));
  const step = (width - left) / Math.max(1, buckets.length);
  const y = (v) => height - bottom - (v / peak) * (height - bottom - 10);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  for (const fraction of [0, 0.5, 1]) {
    const value = Math.round(peak * fraction);
    chart.appendChild(svg("line", { x1: left, x2: width, y1: y(value), y2: y(value), class: "grid-line" }));
    const label = svg("text", { x: left - 4, y: y(value) + 3, "text-anchor": "end", class: "axis" });
    label.textContent = fmtInt(value);
    chart.appendChild(label);
  }
  buckets.forEach((b, i) => {
    const x = left + i * step;
    const bar = svg("rect", { x: x + 1, width: Math.max(1, step - 2), y: y(b.transactions), height: height - bottom - y(b.transactions), class: "bar-tx" });
    const title = svg("title", {});
    title.textContent = `${fmtShortTime(b.t_ms)}: ${b.transactions} transactions, ${b.alerts} alerts`;
    bar.appendChild(title);
    chart.appendChild(bar);
    if (b.alerts) chart.appendChild(svg("rect", { x: x + 1, width: Math.max(1, step - 2), y: y(b.alerts), height: height - bottom - y(b.alerts), class: "bar-al" }));
    if (i % Math.ceil(buckets.length / 6) === 0) {
      const tick = svg("text", { x: x + step / 2, y: height - 5, "text-anchor": "middle", class: "axis" });
      tick.textContent = fmtShortTime(b.t_ms);
      chart.appendChild(tick);
    }
  });
  $("#trend-chart").replaceChildren(chart);
}

function alertCard(alert, fresh) {
  const item = document.createElement("li");
  item.className = `alert-card${fresh ? " fresh" : ""}`;
  item.dataset.transactionId = alert.transaction_id;
  const reasons = (alert.reasons || []).slice(0, 2).map((r) => esc(r.text)).join(" · ");
  item.innerHTML = `
    <div class="top"><a href="/ui/transactions/${encodeURIComponent(alert.transaction_id)}">${esc(alert.transaction_id)}</a>
      <span>score ${esc(alert.score)} ${pill(alert.decision)}</span></div>
    <div>${esc(alert.user_id)} · ${fmtMoney(alert.amount)}</div>
    <div class="why">${reasons}</div>
    <div class="meta">${fmtTime(alert.created_at_ms)}</div>`;
  return item;
}

async function overviewFeed() {
  const recent = await api("/v1/alerts?limit=20&order=newest");
  const feed = $("#alert-feed");
  feed.replaceChildren(...recent.items.map((a) => alertCard(a, false)));
  $("#feed-note").textContent = recent.items.length ? "newest first" : "waiting for alerts…";
}

// A drifted champion (see drift.js) shows a warning over the overview; checked once a minute.
async function overviewDrift() {
  const report = await api("/v1/drift");
  const note = $("#drift-note");
  note.hidden = !report.warning;
  if (report.warning) setHTML(note, `Drift warning: ${esc(report.message)} <a href="/ui/drift">See the drift view</a>`);
}

function initOverview() {
  const refresh = () => Promise.all([overviewStats(), overviewTrend()]).catch((e) => toast(`Could not refresh: ${e.message}`));
  $$(".segmented button").forEach((button) => button.addEventListener("click", () => {
    trendWindow = button.dataset.window;
    $$(".segmented button").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
    overviewTrend();
  }));
  alertListeners.push((alert) => {
    const feed = $("#alert-feed");
    if (feed.querySelector(`[data-transaction-id="${CSS.escape(alert.transaction_id)}"]`)) return;
    feed.prepend(alertCard(alert, true));
    while (feed.children.length > 50) feed.lastChild.remove();
    $("#feed-note").textContent = "newest first";
  });
  connectListeners.push(() => overviewFeed().catch(() => {}));
  refresh();
  setInterval(refresh, 3000);
  const drift = () => overviewDrift().catch(() => {});  // a nicety: the drift view shows its own errors
  drift();
  setInterval(drift, 60000);
}

// --- transactions --------------------------------------------------------------------------

const listState = { order: "newest", cursors: [null], page: 0 };

function filterQuery() {
  const form = $("#filters");
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form).entries()) {
    if (value === "") continue;
    params.set(name, name === "from" || name === "to" ? new Date(value).toISOString() : value);
  }
  params.set("order", listState.order);
  params.set("limit", "25");
  return params;
}

async function loadTransactions() {
  const params = filterQuery();
  const cursor = listState.cursors[listState.page];
  if (cursor != null) params.set("cursor", cursor);
  history.replaceState(null, "", `?${params}`);
  const rows = $("#tx-rows");
  let page;
  try {
    page = await api(`/v1/transactions?${params}`);
  } catch (error) {
    const detail = error.body && error.body.errors ? error.body.errors.map((e) => `${e.field}: ${e.problem}`).join("; ") : error.message;
    rows.innerHTML = `<tr><td colspan="8" class="inline-error">${esc(detail)}</td></tr>`;
    return;
  }
  listState.cursors[listState.page + 1] = page.next_cursor;
  rows.innerHTML = page.items.length ? page.items.map((t) => `
    <tr data-href="/ui/transactions/${encodeURIComponent(t.transaction_id)}" tabindex="0">
      <td>${fmtTime(t.timestamp_ms)}</td>
      <td><a href="/ui/transactions/${encodeURIComponent(t.transaction_id)}">${esc(t.transaction_id)}</a></td>
      <td><a href="?user=${encodeURIComponent(t.user_id)}">${esc(t.user_id)}</a></td>
      <td class="num" data-amount="${esc(t.amount)}">${fmtMoney(t.amount, t.currency)}</td>
      <td>${esc(t.location || t.country || "")}</td>
      <td class="num" data-score="${esc(t.decision.score)}">${scoreCell(t.decision.score)}</td>
      <td>${pill(t.decision.decision)}</td>
      <td>${reasonTags(t.decision.reasons)}</td>
    </tr>`).join("") : `<tr><td colspan="8" class="muted">No transactions match these filters.</td></tr>`;
  $("#tx-summary").textContent = `Page ${listState.page + 1} · ${page.items.length} shown`;
  $("#prev-page").disabled = listState.page === 0;
  $("#next-page").disabled = page.next_cursor == null;
}

async function initTransactions() {
  const form = $("#filters");
  const incoming = new URLSearchParams(location.search);
  try {
    const rules = await api("/v1/rules");
    $("#rule-filter").innerHTML += rules.rules.map((r) => `<option>${esc(r.code)}</option>`).join("");
  } catch { /* the rule filter stays "any" */ }
  for (const [name, value] of incoming.entries()) {
    const field = form.elements.namedItem(name);
    if (field) field.value = name === "from" || name === "to" ? value.slice(0, 16) : value;
  }
  listState.order = incoming.get("order") || "newest";
  const restart = () => { listState.cursors = [null]; listState.page = 0; loadTransactions(); };
  form.addEventListener("submit", (event) => { event.preventDefault(); restart(); });
  form.addEventListener("reset", () => setTimeout(() => { listState.order = "newest"; markSort(); restart(); }));
  $$("th .sort").forEach((button) => button.addEventListener("click", () => {
    const key = button.dataset.sort;
    listState.order = listState.order === `${key}_desc` ? `${key}_asc` : `${key}_desc`;
    markSort();
    restart();
  }));
  $("#prev-page").addEventListener("click", () => { listState.page -= 1; loadTransactions(); });
  $("#next-page").addEventListener("click", () => { listState.page += 1; loadTransactions(); });
  $("#tx-rows").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-href]");
    if (row && !event.target.closest("a")) location.href = row.dataset.href;
  });
  $("#tx-rows").addEventListener("keydown", (event) => {
    const row = event.target.closest("tr[data-href]");
    if (row && event.key === "Enter") location.href = row.dataset.href;
  });
  markSort();
  loadTransactions();
}

function markSort() {
  $$("th .sort").forEach((button) => {
    const [key, dir] = listState.order.split("_");
    if (key === button.dataset.sort) button.dataset.dir = dir; else delete button.dataset.dir;
    button.closest("th").setAttribute("aria-sort", key === button.dataset.sort ? (dir === "asc" ? "ascending" : "descending") : "none");
  });
}

// --- transaction / alert detail ------------------------------------------------------------

function timeline(history, current) {
  if (!history.length) return "";
  const times = history.map((t) => t.timestamp_ms);
  const first = Math.min(...times), last = Math.max(...times), span = Math.max(1, last - first);
  const dots = history.map((t) => {
    const left = 3 + ((t.timestamp_ms - first) / span) * 94;
    const color = MIX_COLORS[t.decision.decision] || "#6b7280";
    const size = Math.min(18, 8 + Math.log10(t.amount + 1) * 2);
    const mark = t.transaction_id === current ? " current" : "";
    return `<a class="dot${mark}" href="/ui/transactions/${encodeURIComponent(t.transaction_id)}" data-style="left:${left}%;background:${color};width:${size}px;height:${size}px"
      title="${esc(fmtTime(t.timestamp_ms))} · ${esc(fmtMoney(t.amount, t.currency))} · ${esc(t.location || "")} · ${esc(t.decision.decision)}"></a>`;
  }).join("");
  return `<div class="timeline" role="img" aria-label="The user's recent transactions over time">${dots}</div>`;
}

function reviewBox(alert) {
  if (!alert) return `<p class="muted">No alert was raised for this transaction.</p>`;
  const verdict = alert.verdict ? pill(alert.verdict === "fraud" ? "confirmed fraud" : "false positive", alert.verdict) : "";
  const controls = can.review ? `
    <label>Note <textarea id="review-note" rows="2" maxlength="2000" placeholder="What you checked"></textarea></label>
    <div class="row">
      <button type="button" class="danger" id="mark-fraud">Confirmed fraud</button>
      <button type="button" class="ok" id="mark-legit">False positive</button>
      ${alert.status === "open" ? `<button type="button" id="take-alert">Take it</button>` : ""}
    </div>` : `<p class="muted">Your role can read but not review alerts.</p>`;
  return `<div class="review-box">
    <p>Alert <span id="alert-status">${pill(alert.status)}</span> ${verdict}
      ${alert.assignee ? `· assigned to <strong>${esc(alert.assignee)}</strong>` : ""}
      ${alert.case_id ? `· part of <a href="/ui/cases/${encodeURIComponent(alert.case_id)}" id="alert-case">its case</a>` : ""}</p>
    ${alert.note ? `<p class="muted">Note: ${esc(alert.note)}</p>` : ""}${controls}</div>`;
}

async function review(transactionId, verdict, note) {
  await api(`/v1/alerts/${encodeURIComponent(transactionId)}/review`, { json: { verdict, note: note || null, status: "closed" } });
  toast(verdict === "fraud" ? "Marked as confirmed fraud; the label is stored" : "Marked as false positive; the label is stored");
}

async function initDetail() {
  const box = $("#detail");
  const id = box.dataset.transactionId;
  let t;
  try {
    t = await api(`/v1/transactions/${encodeURIComponent(id)}`);
  } catch (error) {
    box.innerHTML = `<p class="inline-error">${esc(error.status === 404 ? `No transaction ${id}.` : error.message)}</p>`;
    return;
  }
  const d = t.decision;
  const history = (await api(`/v1/users/${encodeURIComponent(t.user_id)}/history?limit=30`)).items;
  const maxContribution = Math.max(1e-9, ...d.reasons.map((r) => Math.abs(r.contribution)));
  const featureValue = (v) => (v == null ? "–" : Number.isInteger(v) ? fmtInt(v) : Number(v).toLocaleString(undefined, { maximumFractionDigits: 2 }));
  const features = Object.entries(d.features || {}).map(([k, v]) => `<dt class="mono">${esc(k)}</dt><dd>${featureValue(v)}</dd>`).join("");
  const places = history.map((h) => `<tr><td>${fmtTime(h.timestamp_ms)}</td><td>${esc(h.location || "–")}</td><td>${h.lat != null ? `${h.lat.toFixed(2)}, ${h.lon.toFixed(2)}` : "–"}</td><td class="num">${fmtMoney(h.amount, h.currency)}</td><td>${pill(h.decision.decision)}</td></tr>`).join("");
  const labels = (t.labels || []).map((l) => `<li>${pill(l.is_fraud ? "fraud" : "legit")} by ${esc(l.actor || l.source)} · ${fmtTime(l.label_time_ms)}${l.note ? ` · ${esc(l.note)}` : ""}</li>`).join("");
  const audit = (t.audit || []).map((a) => `<li>${fmtTime(a.at_ms)} · <strong>${esc(a.actor)}</strong> ${esc(a.action)}</li>`).join("");
  setHTML(box, `
    <div class="grid detail">
      <section class="panel">
        <div class="panel-head"><h2>Transaction <span class="mono">${esc(t.transaction_id)}</span></h2>${pill(d.decision)}</div>
        <div class="row detail-head">
          <div><div class="big-score" id="detail-score">${esc(d.score)}</div><div class="muted">risk score / 100</div></div>
          <dl class="facts">
            <dt>Amount</dt><dd>${fmtMoney(t.amount, t.currency)}</dd>
            <dt>User</dt><dd><a href="/ui/transactions?user=${encodeURIComponent(t.user_id)}">${esc(t.user_id)}</a></dd>
            <dt>Time</dt><dd>${fmtTime(t.timestamp_ms)}</dd>
            <dt>Where</dt><dd>${esc(t.location || "–")} ${t.country ? `(${esc(t.country)})` : ""}</dd>
            <dt>Merchant</dt><dd>${esc(t.merchant_id || "–")} ${t.merchant_category ? `· ${esc(t.merchant_category)}` : ""}</dd>
            <dt>Device · IP</dt><dd>${esc(t.device_id || "–")} · ${esc(t.ip || "–")}</dd>
            <dt>Card</dt><dd>${t.card_last4 ? `BIN ${esc(t.card_bin)} ···· ${esc(t.card_last4)}` : "–"}</dd>
            <dt>Model · rules</dt><dd>${esc(d.model_version || "rules only")} · v${esc(d.ruleset_version)}</dd>
          </dl>
        </div>
        <h2>Reasons</h2>
        <ol class="reasons" id="detail-reasons">${d.reasons.map((r) => `<li><div><strong>${esc(r.text)}</strong> <span class="muted mono">${esc(r.code)}</span>
          <div class="bar" data-style="width:${(Math.abs(r.contribution) / maxContribution) * 100}%"></div></div><span class="mono" title="score points (0–100)">${r.contribution.toFixed(1)}</span></li>`).join("") || `<li class="muted">No reason: nothing unusual.</li>`}</ol>
        <h2 class="section-gap">Feature values that mattered</h2>
        <dl class="facts">${features}</dl>
      </section>
      <div>
        <section class="panel" id="review-panel">
          <h2>Review</h2>
          ${reviewBox(t.alert)}
          ${labels ? `<h2 class="section-gap">Labels</h2><ul>${labels}</ul>` : ""}
          ${audit ? `<h2 class="section-gap">Audit log</h2><ul class="muted">${audit}</ul>` : ""}
        </section>
        <section class="panel">
          <h2>${esc(t.user_id)}: last ${history.length} transactions</h2>
          ${timeline(history, t.transaction_id)}
          <table class="compact"><thead><tr><th scope="col">Time</th><th scope="col">Location</th><th scope="col">Lat, lon</th><th scope="col" class="num">Amount</th><th scope="col">Decision</th></tr></thead><tbody>${places}</tbody></table>
        </section>
      </div>
    </div>`);
  const act = async (verdict) => {
    try {
      await review(id, verdict, $("#review-note").value);
      setTimeout(() => location.reload(), 600);
    } catch (error) { toast(`Not saved: ${error.message}`); }
  };
  $("#mark-fraud")?.addEventListener("click", () => act("fraud"));
  $("#mark-legit")?.addEventListener("click", () => act("legit"));
  $("#take-alert")?.addEventListener("click", async () => {
    await api(`/v1/alerts/${encodeURIComponent(id)}/assign`, { method: "POST" });
    location.reload();
  });
}

// --- review queue --------------------------------------------------------------------------

let queueItems = [];
let queueSelectedId = null;  // the selection follows the alert, not the row number, as the queue changes

function queueSelected() {
  const index = queueItems.findIndex((a) => a.transaction_id === queueSelectedId);
  return index >= 0 ? index : 0;
}

function markSelected() {
  const selected = queueSelected();
  $$("#queue-rows tr[data-index]").forEach((r) => r.classList.toggle("selected", Number(r.dataset.index) === selected));
}

async function loadQueue() {
  const data = await api("/v1/alerts?status=open,in_review&limit=100");
  queueItems = data.items;
  if (!queueItems.some((a) => a.transaction_id === queueSelectedId)) queueSelectedId = queueItems[0]?.transaction_id ?? null;
  const rows = $("#queue-rows");
  rows.innerHTML = queueItems.length ? queueItems.map((a, i) => `
    <tr data-index="${i}" data-transaction-id="${esc(a.transaction_id)}">
      <td class="num">${scoreCell(a.score)}</td>
      <td class="num">${fmtMoney(a.amount)}</td>
      <td><a href="/ui/transactions/${encodeURIComponent(a.transaction_id)}">${esc(a.transaction_id)}</a></td>
      <td>${esc(a.user_id)}</td>
      <td>${reasonTags(a.reasons, 3)}</td>
      <td class="status">${pill(a.status)}</td>
      <td>${esc(a.assignee || "–")}</td>
      <td class="actions">${can.review ? `<button type="button" class="small" data-act="take" ${a.status === "in_review" ? "disabled" : ""}>Take</button>
        <button type="button" class="small danger" data-act="fraud">Fraud</button>
        <button type="button" class="small ok" data-act="legit">Legit</button>` : ""}</td>
    </tr>`).join("") : `<tr><td colspan="8" class="muted">The queue is empty. New alerts arrive live.</td></tr>`;
  markSelected();
}

async function queueAct(index, action) {
  const alert = queueItems[index];
  if (!alert || !can.review) return;
  try {
    if (action === "take") {
      await api(`/v1/alerts/${encodeURIComponent(alert.transaction_id)}/assign`, { method: "POST" });
      toast(`You took ${alert.transaction_id}`);
    } else {
      await review(alert.transaction_id, action, null);
    }
  } catch (error) { toast(`Not saved: ${error.message}`); }
  await loadQueue();
  refreshQueueCount();
}

function initQueue() {
  $("#queue-rows").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-index]");
    if (!row) return;
    queueSelectedId = row.dataset.transactionId;
    markSelected();
    const button = event.target.closest("button[data-act]");
    if (button) queueAct(queueSelected(), button.dataset.act);
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
    const keys = { j: 1, ArrowDown: 1, k: -1, ArrowUp: -1 };
    if (event.key in keys) {
      const next = Math.max(0, Math.min(queueItems.length - 1, queueSelected() + keys[event.key]));
      queueSelectedId = queueItems[next]?.transaction_id ?? null;
      markSelected();
      event.preventDefault();
    } else if (event.key === "f") queueAct(queueSelected(), "fraud");
    else if (event.key === "l") queueAct(queueSelected(), "legit");
    else if (event.key === "a") queueAct(queueSelected(), "take");
    else if (event.key === "Enter" && queueSelectedId) {
      location.href = `/ui/transactions/${encodeURIComponent(queueSelectedId)}`;
    }
  });
  alertListeners.push(() => loadQueue());
  loadQueue();
  setInterval(loadQueue, 10000);
}

// --- check a transaction -------------------------------------------------------------------

function initCheck() {
  $("#check-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    for (const [name, value] of new FormData(event.target).entries()) if (value !== "") body[name] = value;
    body.amount = Number(body.amount);
    const out = $("#check-result");
    out.classList.remove("muted");
    try {
      const r = await api("/validate-transaction", { json: body });
      out.innerHTML = `
        <p id="check-verdict">${pill(r.decision)} score <strong>${esc(r.score)}</strong> · ${r.is_fraud ? "would raise an alert" : "would not raise an alert"}</p>
        <ol class="reasons">${r.reasons.map((x) => `<li><span>${esc(x.text)}</span><span class="mono" title="score points (0–100)">${x.contribution.toFixed(1)}</span></li>`).join("") || `<li class="muted">No reason: nothing unusual.</li>`}</ol>
        <h2 class="section-gap">${esc(body.user_id)}: recent history</h2>
        ${r.user_history.length ? `<table class="compact"><tbody>${r.user_history.map((h) => `<tr><td>${fmtTime(h.timestamp_ms)}</td><td>${esc(h.location || "")}</td><td class="num">${fmtMoney(h.amount, h.currency)}</td><td>${pill(h.decision.decision)}</td></tr>`).join("")}</tbody></table>` : `<p class="muted">No stored history for this user.</p>`}`;
    } catch (error) {
      const errors = error.body && error.body.errors;
      out.innerHTML = `<div class="inline-error">${errors ? errors.map((e) => `${esc(e.field)}: ${esc(e.problem)}${e.allowed ? ` (allowed: ${esc(e.allowed)})` : ""}`).join("<br>") : esc(error.message)}</div>`;
    }
  });
}

// --- rules ---------------------------------------------------------------------------------

let rulesData = null;

async function loadRules() {
  const [rules, performance] = await Promise.all([api("/v1/rules"), api("/v1/rules/performance?days=7")]);
  rulesData = rules;
  $("#rules-version").textContent = `version ${rules.version}`;
  $("#rules-rows").innerHTML = performance.rules.map((r) => `
    <tr data-code="${esc(r.code)}">
      <td><strong>${esc(r.code)}</strong><div class="muted">${esc(r.description)}</div></td>
      <td>${esc(r.action)}${r.weight ? ` <span class="muted">+${esc(r.weight)}</span>` : ""}</td>
      <td class="mono">${esc(r.expression)}</td>
      <td class="num">${fmtInt(r.hits)}</td>
      <td class="num">${fmtInt(r.labelled)}</td>
      <td class="num">${r.precision == null ? "–" : `${(r.precision * 100).toFixed(0)}%`}</td>
      <td>${r.enabled ? (r.shadow ? pill("shadow") : pill("on")) : pill("off")}</td>
      <td class="actions">${can.admin ? `<button type="button" class="small" data-act="edit">Edit</button>
        <button type="button" class="small" data-act="toggle">${r.enabled ? "Disable" : "Enable"}</button>
        <button type="button" class="small" data-act="shadow">${r.shadow ? "Make live" : "Shadow"}</button>` : ""}</td>
    </tr>`).join("");
}

function ruleFromForm() {
  const form = $("#rule-form");
  return {
    code: form.code.value.trim(), description: form.description.value, expression: form.expression.value,
    action: form.action.value, weight: Number(form.weight.value || 0),
    enabled: form.enabled.checked, shadow: form.shadow.checked,
  };
}

function showRuleError(error) {
  const box = $("#rule-error");
  const body = error.body || {};
  let text = body.detail || error.message;
  if (Array.isArray(body.errors)) text = body.errors.map((e) => `${e.field}: ${e.problem}`).join("\n");
  box.innerHTML = esc(text);
  if (body.position) {
    const expression = $("#rule-form").expression.value;
    box.innerHTML += `<span class="caret">${esc(expression)}\n${" ".repeat(body.position - 1)}^ ${esc(body.reason)}</span>`;
    const field = $("#rule-form").expression;
    field.focus();
    field.setSelectionRange(body.position - 1, body.position);
  }
  box.hidden = false;
}

async function validateRule() {
  $("#rule-error").hidden = true;
  try {
    const result = await api("/v1/rules/validate", { json: { rule: ruleFromForm() } });
    if (!result.valid) throw new ApiError(422, result);
    $("#backtest-result").innerHTML = `<p class="ok-note">The rule is valid.</p>`;
    return result.yaml;
  } catch (error) {
    $("#backtest-result").innerHTML = "";
    showRuleError(error);
    return null;
  }
}

function backtestTable(result) {
  // The policy as a whole (current rules vs. edited), then the edited rule set's rules one by one.
  const rows = [["Precision at the review threshold", "precision_at_threshold", "pct"], ["Recall (frauds caught)", "recall_at_threshold", "pct"],
    ["Legit payments flagged", "legit_flagged_share", "pct"], ["Fraud money caught", "fraud_amount_caught_share", "pct"],
    ["Reviews per day", "reviews_per_day", "num"]];
  const cell = (v, kind) => (v == null ? "–" : kind === "pct" ? `${(v * 100).toFixed(1)}%` : fmtInt(v));
  const current = result.current.policy, candidate = result.candidate.policy;
  const perRule = Object.entries(result.candidate.rules).map(([code, r]) => {
    const before = result.current.rules[code];
    return `<tr><td>${esc(code)}</td><td class="num">${before ? fmtInt(before.hits) : "–"}</td><td class="num">${fmtInt(r.hits)}</td>
      <td class="num">${(r.precision * 100).toFixed(1)}%</td><td class="num">${(r.recall * 100).toFixed(1)}%</td></tr>`;
  }).join("");
  return `<h2 class="section-gap">Backtest over ${fmtInt(result.transactions)} stored transactions (${fmtInt(current.frauds)} labelled frauds)</h2>
    <table class="compact" id="backtest-table"><thead><tr><th scope="col">Whole policy</th><th scope="col" class="num">Current</th><th scope="col" class="num">Edited</th></tr></thead>
    <tbody>${rows.map(([label, key, kind]) => `<tr><td>${label}</td><td class="num">${cell(current[key], kind)}</td><td class="num">${cell(candidate[key], kind)}</td></tr>`).join("")}</tbody></table>
    <table class="compact"><thead><tr><th scope="col">Rule</th><th scope="col" class="num">Hits now</th><th scope="col" class="num">Hits edited</th>
    <th scope="col" class="num">Precision</th><th scope="col" class="num">Recall</th></tr></thead><tbody>${perRule}</tbody></table>
    <p class="muted">Press “Save as new version” to put the edited set live.</p>`;
}

async function backtestRule() {
  const yaml = await validateRule();
  if (!yaml) return;
  const out = $("#backtest-result");
  out.innerHTML = `<p class="muted">Backtesting…</p>`;
  try {
    let run = await api("/v1/backtests", { json: { yaml, days: 30 } });
    while (run.status === "queued" || run.status === "running") {
      await new Promise((resolve) => setTimeout(resolve, 500));
      run = await api(`/v1/backtests/${run.id}`);
      out.innerHTML = `<p class="muted">Backtesting… ${Math.round(run.progress * 100)}%</p>`;
    }
    out.innerHTML = run.status === "done" ? backtestTable(run.result) : `<p class="inline-error">${esc(run.error)}</p>`;
  } catch (error) { out.innerHTML = `<p class="inline-error">${esc(error.message)}</p>`; }
}

function openEditor(code) {
  const rule = rulesData.rules.find((r) => r.code === code);
  const form = $("#rule-form");
  for (const key of ["code", "description", "expression", "action", "weight"]) form[key].value = rule[key];
  form.enabled.checked = rule.enabled;
  form.shadow.checked = rule.shadow;
  $("#editor-title").textContent = `Edit rule ${code}`;
  $("#rule-error").hidden = true;
  $("#backtest-result").innerHTML = "";
  $("#editor").hidden = false;
  $("#editor").scrollIntoView({ behavior: "smooth", block: "start" });
  form.expression.focus();
}

function initRules() {
  $("#rules-rows").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-act]");
    if (!button) return;
    const code = button.closest("tr").dataset.code;
    const rule = rulesData.rules.find((r) => r.code === code);
    if (button.dataset.act === "edit") { openEditor(code); return; }
    const flags = button.dataset.act === "toggle" ? { enabled: !rule.enabled } : { shadow: !rule.shadow };
    try {
      await api(`/v1/rules/${encodeURIComponent(code)}`, { method: "PATCH", json: flags });
      toast(`Rule ${code} updated; a new rule set version is live`);
      await loadRules();
    } catch (error) { toast(`Not saved: ${error.message}`); }
  });
  $("#rule-validate").addEventListener("click", validateRule);
  $("#rule-backtest").addEventListener("click", backtestRule);
  $("#rule-cancel").addEventListener("click", () => { $("#editor").hidden = true; });
  $("#rule-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const yaml = await validateRule();
    if (!yaml) return;
    try {
      const saved = await api("/v1/rules", { method: "PUT", json: { yaml } });
      toast(`Saved: rule set version ${saved.version} is live`);
      $("#editor").hidden = true;
      await loadRules();
    } catch (error) { showRuleError(error); }
  });
  loadRules();
}

// --- models --------------------------------------------------------------------------------

async function loadModels() {
  const data = await api("/v1/models");
  $("#models-note").textContent = data.pinned ? "A model file is pinned by configuration (FRAUDSTREAM_MODEL_PATH)"
    : `Scoring with ${data.scoring || "rules only (no champion yet)"}`;
  const metric = (m, key) => (m[key] == null ? "–" : Number(m[key]).toFixed(3));
  $("#models-rows").innerHTML = data.versions.length ? data.versions.map((m) => `
    <tr data-version="${esc(m.version)}">
      <td class="mono">${esc(m.version)}</td><td>${esc(m.kind)}</td>
      <td>${m.role ? pill(m.role, m.role === "champion" ? "approve" : "challenge") : ""}</td>
      <td class="num">${metric(m.metrics, "roc_auc")}</td><td class="num">${metric(m.metrics, "average_precision")}</td>
      <td class="num">${metric(m.metrics, "recall_at_1pct_fpr")}</td><td>${fmtTime(Date.parse(m.created))}</td>
      <td>${can.admin && m.role !== "champion" ? `<button type="button" class="small primary" data-act="promote">Promote</button>
        ${m.role ? "" : `<button type="button" class="small" data-act="shadow">Shadow</button>`}` : ""}</td>
    </tr>`).join("") : `<tr><td colspan="8" class="muted">No model registered yet: decisions use the rules alone.</td></tr>`;
}

function initModels() {
  const dialog = $("#confirm");
  $("#models-rows").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-act]");
    if (!button) return;
    const version = button.closest("tr").dataset.version;
    if (button.dataset.act === "shadow") {
      await api(`/v1/models/${encodeURIComponent(version)}/shadow`, { method: "POST" });
      toast(`${version} now scores in shadow`);
      loadModels();
      return;
    }
    $("#confirm-text").textContent = `${version} will decide every transaction from the next request on. The current champion becomes a stored version.`;
    dialog.returnValue = "";
    dialog.showModal();
    dialog.addEventListener("close", async () => {
      if (dialog.returnValue !== "ok") return;
      try {
        await api(`/v1/models/${encodeURIComponent(version)}/promote`, { method: "POST" });
        toast(`${version} is the champion`);
      } catch (error) { toast(`Not promoted: ${error.message}`); }
      loadModels();
    }, { once: true });
  });
  loadModels();
}

// --- start -----------------------------------------------------------------------------------

// A page with its own script (templates' `scripts` block, loaded after this one) adds itself here:
// every deferred script runs before DOMContentLoaded, when the page's function is called.
const PAGES = {
  overview: initOverview, transactions: initTransactions, transaction: initDetail, queue: initQueue,
  check: initCheck, rules: initRules, models: initModels,
};

connectStream();
refreshQueueCount();
setInterval(refreshQueueCount, 10000);
alertListeners.push(() => refreshQueueCount());
document.addEventListener("DOMContentLoaded", () => PAGES[document.body.dataset.page]?.());
