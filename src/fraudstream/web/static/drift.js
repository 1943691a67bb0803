// Drift page (drift.html): each feature's PSI against the champion's training data, with a warning banner
// when one drifted, and the daily alert rate and score distribution, drawn from /v1/drift as plain SVG.
"use strict";

const DRIFT_SHOWN = 25;
const driftState = { all: false, report: null };

function driftBanner(report) {
  const banner = $("#drift-banner");
  const quiet = report.status === "stable" || report.status === "watch";
  banner.hidden = quiet && !report.warning;
  banner.className = `banner ${report.warning ? "warn" : "info"}`;
  banner.textContent = report.warning ? `Drift warning: ${report.message}` : report.message;
}

function binBars(feature) {
  const width = 180, height = 26;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "bins", "aria-hidden": "true" });
  const peak = Math.max(0.0001, ...feature.expected, ...feature.actual);
  const step = width / feature.expected.length;
  feature.expected.forEach((expected, i) => {
    const actual = feature.actual[i];
    const x = i * step;
    const h = (v) => Math.max(v > 0 ? 1 : 0, (v / peak) * (height - 2));
    chart.appendChild(svg("rect", { x: x + 1, width: step / 2 - 1, y: height - h(expected), height: h(expected), class: "bin-train" }));
    chart.appendChild(svg("rect", { x: x + step / 2, width: step / 2 - 1, y: height - h(actual), height: h(actual), class: `bin-live ${feature.status}` }));
  });
  const title = svg("title", {});
  title.textContent = `${feature.feature}: training ${feature.expected.map((v) => (v * 100).toFixed(1)).join(" / ")} %, `
    + `window ${feature.actual.map((v) => (v * 100).toFixed(1)).join(" / ")} % (last bin: missing values)`;
  chart.appendChild(title);
  return chart;
}

function driftTable(report) {
  const body = $("#drift-rows");
  const features = report.features;
  if (!features.length) {
    const why = report.status === "no_model" || report.status === "no_reference" ? report.message : "No transaction scored by the champion in the window yet.";
    setHTML(body, `<tr><td colspan="4" class="muted">${esc(why)}</td></tr>`);
    $("#drift-all").hidden = true;
    $("#drift-count").textContent = "";
    return;
  }
  const shown = driftState.all ? features : features.slice(0, DRIFT_SHOWN);
  const rows = shown.map((f) => {
    const row = document.createElement("tr");
    row.dataset.feature = f.feature;
    setHTML(row, `<td><code>${esc(f.feature)}</code></td><td class="num">${f.psi.toFixed(4)}</td><td>${pill(f.status)}</td><td class="bins-cell"></td>`);
    row.querySelector(".bins-cell").appendChild(binBars(f));
    return row;
  });
  body.replaceChildren(...rows);
  $("#drift-count").textContent = `${shown.length} of ${features.length} features, the most drifted first`;
  const more = $("#drift-all");
  more.hidden = features.length <= DRIFT_SHOWN;
  more.textContent = driftState.all ? `Show the ${DRIFT_SHOWN} most drifted` : `Show all ${features.length} features`;
}

function dayLabel(day) { return day.slice(5); }  // "2026-12-07" -> "12-07"

function dayAxis(chart, daily, left, step, height) {
  daily.forEach((d, i) => {
    if ((daily.length - 1 - i) % 2) return;  // every other day, today always
    const tick = svg("text", { x: left + i * step + step / 2, y: height - 5, "text-anchor": "middle", class: "axis" });
    tick.textContent = dayLabel(d.day);
    chart.appendChild(tick);
  });
}

function drawAlertRate(daily) {
  const width = 600, height = 220, left = 44, bottom = 20;
  const peak = Math.max(0.01, ...daily.map((d) => d.alert_rate || 0));
  const step = (width - left) / daily.length;
  const y = (v) => height - bottom - (v / peak) * (height - bottom - 10);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  for (const fraction of [0, 0.5, 1]) {
    chart.appendChild(svg("line", { x1: left, x2: width, y1: y(peak * fraction), y2: y(peak * fraction), class: "grid-line" }));
    const label = svg("text", { x: left - 4, y: y(peak * fraction) + 3, "text-anchor": "end", class: "axis" });
    label.textContent = `${(peak * fraction * 100).toFixed(1)}%`;
    chart.appendChild(label);
  }
  daily.forEach((d, i) => {
    if (d.alert_rate == null) return;
    const bar = svg("rect", { x: left + i * step + 2, width: Math.max(1, step - 4), y: y(d.alert_rate), height: height - bottom - y(d.alert_rate), class: "bar-al" });
    const title = svg("title", {});
    title.textContent = `${d.day}: ${fmtInt(d.alerts)} alerts of ${fmtInt(d.decisions)} decisions (${(d.alert_rate * 100).toFixed(2)}%)`;
    bar.appendChild(title);
    chart.appendChild(bar);
  });
  dayAxis(chart, daily, left, step, height);
  $("#alert-rate-chart").replaceChildren(chart);
}

function drawScoreDistribution(daily) {
  const width = 600, height = 220, left = 44, bottom = 20;
  const step = (width - left) / daily.length;
  const y = (share) => (height - bottom) - share * (height - bottom - 10);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  for (const fraction of [0, 0.5, 1]) {
    chart.appendChild(svg("line", { x1: left, x2: width, y1: y(fraction), y2: y(fraction), class: "grid-line" }));
    const label = svg("text", { x: left - 4, y: y(fraction) + 3, "text-anchor": "end", class: "axis" });
    label.textContent = `${fraction * 100}%`;
    chart.appendChild(label);
  }
  daily.forEach((d, i) => {
    if (!d.decisions) return;
    let below = 0;
    d.scores.forEach((count, bucket) => {
      if (!count) return;
      const share = count / d.decisions;
      const part = svg("rect", { x: left + i * step + 2, width: Math.max(1, step - 4), y: y(below + share), height: y(below) - y(below + share), class: `score-${bucket}` });
      const title = svg("title", {});
      title.textContent = `${d.day}: ${fmtInt(count)} decisions scored ${bucket * 10}-${bucket === 9 ? 100 : bucket * 10 + 9} (${(share * 100).toFixed(1)}%)`;
      part.appendChild(title);
      chart.appendChild(part);
      below += share;
    });
  });
  dayAxis(chart, daily, left, step, height);
  $("#score-chart").replaceChildren(chart);
  setHTML($("#score-legend"), [0, 3, 6, 9].map((b) => `<span class="key score-key-${b}"></span> ${b * 10}-${b === 9 ? 100 : b * 10 + 9}`).join(" "));
}

async function loadDrift() {
  const report = await api("/v1/drift");
  driftState.report = report;
  $("#drift-watch").textContent = report.thresholds.watch;
  $("#drift-drifted").textContent = report.thresholds.drifted;
  const w = report.window;
  $("#drift-summary").textContent = report.model_version
    ? `model ${report.model_version} · ${fmtInt(w.transactions)} transactions since ${w.days[0]} · trained on ${fmtInt(report.reference_rows)} rows`
    : "no model decides";
  driftBanner(report);
  driftTable(report);
  drawAlertRate(report.daily);
  drawScoreDistribution(report.daily);
}

function initDrift() {
  const refresh = () => loadDrift().catch((e) => toast(`Could not load drift: ${e.message}`));
  $("#drift-all").addEventListener("click", () => {
    driftState.all = !driftState.all;
    if (driftState.report) driftTable(driftState.report);
  });
  refresh();
  setInterval(refresh, 30000);
}

PAGES.drift = initDrift;
