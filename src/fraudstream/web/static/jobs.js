// The Jobs page: the schedule with its next runs, the runs with their progress (polled while one is
// queued or running), a run's report, and buttons to run a job now (admins).
"use strict";

const JOB_NAMES = { retrain: "Retrain", rescore: "Rescore", backtest_report: "Backtest report" };
let selectedRun = null;
let runsTimer = null;

function jobName(job) { return JOB_NAMES[job] || job; }
function pct(v) { return v == null ? "–" : `${(v * 100).toFixed(1)}%`; }
function took(run) {
  if (run.started_at_ms == null) return "–";
  const ms = (run.finished_at_ms ?? Date.now()) - run.started_at_ms;
  return ms < 60000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60000)} min`;
}

function runCell(run) {
  if (!run) return `<span class="muted">never</span>`;
  return `${pill(run.status, `job-${run.status}`)} <span class="muted">${fmtTime(run.finished_at_ms ?? run.created_at_ms)}</span>`;
}

async function loadSchedule() {
  const data = await api("/v1/jobs/schedule");
  setHTML($("#schedule-rows"), data.jobs.map((job) => {
    const when = [];
    if (job.cron) when.push(`cron <code>${esc(job.cron)}</code>`);
    if (job.after_labels) when.push(`after ${fmtInt(job.after_labels)} new labels (${fmtInt(job.labels_since_last)} so far)`);
    if (!when.length) when.push(`<span class="muted">on demand</span>`);
    // A cron expression is read in UTC: its fire times are shown in UTC too, saying so, so they
    // match the expression beside them whatever the browser's zone.
    const next = job.next_runs_ms.length ? job.next_runs_ms.map((t) => esc(fmtUtc(t))).join("<br>") : "–";
    const action = can.admin ? `<button type="button" class="small primary" data-run="${esc(job.job)}">Run now…</button>` : "";
    return `<tr data-job="${esc(job.job)}"><td>${esc(jobName(job.job))}</td><td>${when.join("; ")}</td><td>${next}</td>
      <td>${runCell(job.last_run)}</td><td class="actions">${action}</td></tr>`;
  }).join(""));
}

async function loadRuns() {
  const params = new URLSearchParams({ limit: "50" });
  if ($("#runs-job").value) params.set("job", $("#runs-job").value);
  if ($("#runs-status").value) params.set("status", $("#runs-status").value);
  const data = await api(`/v1/jobs?${params}`);
  setHTML($("#runs-rows"), data.items.length ? data.items.map((run) => `
    <tr data-run-id="${esc(run.id)}" class="clickable${run.id === selectedRun ? " selected" : ""}" tabindex="0">
      <td>${esc(fmtTime(run.created_at_ms))}</td><td>${esc(jobName(run.job))}</td><td>${esc(run.trigger)}</td><td>${esc(run.actor || "")}</td>
      <td>${pill(run.status, `job-${run.status}`)}</td>
      <td><progress max="1" value="${esc(run.progress)}" aria-label="progress">${Math.round(run.progress * 100)}%</progress>
        <span class="muted">${Math.round(run.progress * 100)}%</span></td>
      <td class="num">${esc(took(run))}</td><td class="note">${esc(run.error || "")}</td>
    </tr>`).join("") : `<tr><td colspan="8" class="muted">No runs yet.</td></tr>`);
  const active = data.items.some((run) => run.status === "queued" || run.status === "running");
  clearTimeout(runsTimer);
  // Quick while a run moves (its progress bar), slow otherwise (a scheduled run may start).
  runsTimer = setTimeout(refresh, active ? 1000 : 10000);
  if (selectedRun && data.items.some((run) => run.id === selectedRun)) await showRun(selectedRun);
  return active;
}

async function refresh() {
  try { await Promise.all([loadRuns(), loadSchedule()]); } catch (error) { toast(`Jobs: ${error.message}`); }
}

function policyRows(current, candidate) {
  const rows = [["Flagged (reviews and declines)", "flagged", "int"], ["Frauds flagged", "frauds_flagged", "int"],
    ["Precision at the review threshold", "precision_at_threshold", "pct"], ["Recall (frauds caught)", "recall_at_threshold", "pct"],
    ["Legit payments flagged", "legit_flagged_share", "pct"], ["Fraud money caught", "fraud_amount_caught_share", "pct"],
    ["Reviews per day", "reviews_per_day", "num"]];
  const cell = (v, kind) => (v == null ? "–" : kind === "pct" ? pct(v) : fmtInt(v));
  return rows.map(([label, key, kind]) => `<tr><td>${label}</td><td class="num">${cell(current[key], kind)}</td>` +
    (candidate ? `<td class="num">${cell(candidate[key], kind)}</td>` : "") + "</tr>").join("");
}

function rescoreReport(result) {
  const changes = result.changes;
  const transitions = changes.transitions.map((t) => `<tr><td>${pill(t.current)} → ${pill(t.candidate)}</td><td class="num">${fmtInt(t.count)}</td></tr>`).join("");
  const rules = result.comparison.rules.map((r) => `<tr><td>${esc(r.code)}</td><td>${esc(r.change)}${r.changed.length ? ` <span class="muted">(${esc(r.changed.join(", "))})</span>` : ""}</td>
    <td class="num">${r.current ? fmtInt(r.current.hits) : "–"}</td><td class="num">${r.candidate ? fmtInt(r.candidate.hits) : "–"}</td>
    <td class="num">${r.candidate ? pct(r.candidate.precision) : "–"}</td><td class="num">${r.candidate ? pct(r.candidate.recall) : "–"}</td></tr>`).join("");
  const examples = changes.examples.map((e) => `<tr><td><a href="/ui/transactions/${encodeURIComponent(e.transaction_id)}">${esc(e.transaction_id)}</a></td>
    <td>${pill(e.current)}</td><td>${pill(e.candidate)}</td><td>${e.is_fraud ? pill("fraud") : ""}</td></tr>`).join("");
  return `<p>${fmtInt(result.transactions)} stored transactions from ${esc(fmtTime(result.from_ms))} to ${esc(fmtTime(result.to_ms))},
      rule set ${esc(result.current_rules_version)} (in force) against the candidate, ${result.model ? `with the champion ${esc(result.model)}` : "the rules alone"}.</p>
    <dl class="facts" id="rescore-changes"><dt>Decisions that change</dt><dd>${fmtInt(changes.decisions_changed)}</dd>
      <dt>Alerts gained</dt><dd>${fmtInt(changes.alerts_gained)} (${fmtInt(changes.alerts_gained_fraud)} labelled fraud)</dd>
      <dt>Alerts lost</dt><dd>${fmtInt(changes.alerts_lost)} (${fmtInt(changes.alerts_lost_fraud)} labelled fraud)</dd></dl>
    ${transitions ? `<table class="compact"><thead><tr><th scope="col">Decision change</th><th scope="col" class="num">Transactions</th></tr></thead><tbody>${transitions}</tbody></table>` : ""}
    <table class="compact" id="rescore-policy"><thead><tr><th scope="col">Whole policy</th><th scope="col" class="num">In force</th><th scope="col" class="num">Candidate</th></tr></thead>
      <tbody>${policyRows(result.current.policy, result.candidate.policy)}</tbody></table>
    <table class="compact" id="rescore-rules"><thead><tr><th scope="col">Rule</th><th scope="col">Change</th><th scope="col" class="num">Hits in force</th>
      <th scope="col" class="num">Hits candidate</th><th scope="col" class="num">Precision</th><th scope="col" class="num">Recall</th></tr></thead><tbody>${rules}</tbody></table>
    ${examples ? `<h3>Changed decisions (first ${changes.examples.length})</h3><table class="compact"><thead><tr><th scope="col">Transaction</th><th scope="col">In force</th>
      <th scope="col">Candidate</th><th scope="col">Label</th></tr></thead><tbody>${examples}</tbody></table>` : ""}`;
}

function backtestReport(result) {
  const report = result.report;
  const rules = Object.entries(report.rules).map(([code, r]) => `<tr><td>${esc(code)}${r.shadow ? ` ${pill("shadow")}` : ""}</td>
    <td class="num">${fmtInt(r.hits)}</td><td class="num">${pct(r.precision)}</td><td class="num">${pct(r.recall)}</td><td class="num">${fmtInt(r.alerts_per_day)}</td></tr>`).join("");
  return `<p>${fmtInt(result.transactions)} stored transactions from ${esc(fmtTime(result.from_ms))} to ${esc(fmtTime(result.to_ms))}
      (${fmtInt(result.labelled_fraud)} labelled fraud), rule set ${esc(report.rules_version)}, ${result.model ? `champion ${esc(result.model)}` : "no model"}.</p>
    <table class="compact" id="backtest-policy"><thead><tr><th scope="col">Whole policy</th><th scope="col" class="num">Value</th></tr></thead>
      <tbody>${policyRows(report.policy, null)}</tbody></table>
    <table class="compact" id="backtest-rules"><thead><tr><th scope="col">Rule</th><th scope="col" class="num">Hits</th><th scope="col" class="num">Precision</th>
      <th scope="col" class="num">Recall</th><th scope="col" class="num">Alerts per day</th></tr></thead><tbody>${rules}</tbody></table>`;
}

function retrainReport(result) {
  const ap = (v) => (v == null ? "none (no champion)" : Number(v).toFixed(4));
  return `<dl class="facts" id="retrain-result"><dt>Challenger</dt><dd class="mono">${esc(result.version)}</dd>
    <dt>Its average precision</dt><dd>${ap(result.challenger_average_precision)}</dd>
    <dt>The champion's, same holdout</dt><dd>${ap(result.champion_average_precision)}</dd>
    <dt>Margin asked</dt><dd>${esc(result.margin)}</dd>
    <dt>Outcome</dt><dd>${result.promoted ? pill("promoted", "approve") : pill("not promoted: scores in shadow", "challenge")}</dd></dl>`;
}

// A run's parameters on one line; a candidate rule set's YAML by its size, not in full.
function paramsText(params) {
  const shown = Object.entries(params).map(([key, value]) =>
    key === "rules" ? `rules: YAML of ${String(value).split("\n").filter(Boolean).length} lines` : `${key}: ${value}`);
  return shown.join(", ") || "none";
}

async function showRun(id) {
  const run = await api(`/v1/jobs/${encodeURIComponent(id)}`);
  $("#run-panel").hidden = false;
  $("#run-title").textContent = `${jobName(run.job)} run ${run.id}`;
  let body = `<p>${pill(run.status, `job-${run.status}`)} <span class="muted">${esc(run.trigger)} by ${esc(run.actor || "–")},
    parameters <code>${esc(paramsText(run.params))}</code></span></p>`;
  if (run.status === "done" && run.result) {
    body += run.job === "rescore" ? rescoreReport(run.result) : run.job === "retrain" ? retrainReport(run.result) : backtestReport(run.result);
  } else if (run.error) {
    body += `<p class="inline-error">${esc(run.error)}</p>`;
  } else {
    body += `<progress max="1" value="${esc(run.progress)}" aria-label="progress"></progress>`;
  }
  setHTML($("#run-result"), body);
}

async function runJob(job) {
  if (job === "rescore") { openRescore(); return; }
  try {
    const run = await api(`/v1/jobs/${job}/run`, { json: {} });
    toast(`${jobName(job)} queued`);
    selectedRun = run.id;
    await refresh();
  } catch (error) { toast(`Not run: ${error.message}`); }
}

async function openRescore() {
  const form = $("#rescore-form");
  if (!form.from.value) {
    const local = (ms) => new Date(ms - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    form.from.value = local(Date.now() - 7 * 86400000);
  }
  const rules = await api("/v1/rules");
  setHTML($("#rescore-version"), rules.versions.map((v) => `<option value="${esc(v.version)}">${esc(v.version)}${v.active ? " (in force)" : ""}</option>`).join(""));
  if (!form.rules.value) form.rules.value = rules.yaml;
  $("#rescore-error").hidden = true;
  $("#rescore-panel").hidden = false;
  $("#rescore-panel").scrollIntoView({ behavior: "smooth", block: "start" });
  form.from.focus();
}

function rescoreBody(form) {
  const body = { from: new Date(form.from.value).toISOString(), model: form.model.value };
  if (form.to.value) body.to = new Date(form.to.value).toISOString();
  if (form.source.value === "yaml") body.rules = form.rules.value;
  else body.rules_version = Number(form.rules_version.value);
  return body;
}

function initJobs() {
  $("#schedule-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-run]");
    if (button) runJob(button.dataset.run);
  });
  const open = (event) => {
    const row = event.target.closest("tr[data-run-id]");
    if (!row || (event.type === "keydown" && event.key !== "Enter")) return;
    selectedRun = row.dataset.runId;
    for (const other of $$("#runs-rows tr")) other.classList.toggle("selected", other === row);
    showRun(selectedRun).catch((error) => toast(error.message));
  };
  $("#runs-rows").addEventListener("click", open);
  $("#runs-rows").addEventListener("keydown", open);
  for (const filter of ["#runs-job", "#runs-status"]) $(filter).addEventListener("change", refresh);
  $("#rescore-source").addEventListener("change", (event) => {
    const yaml = event.target.value === "yaml";
    $("#rescore-yaml-label").hidden = !yaml;
    $("#rescore-version-label").hidden = yaml;
  });
  $("#rescore-cancel").addEventListener("click", () => { $("#rescore-panel").hidden = true; });
  $("#rescore-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const run = await api("/v1/jobs/rescore/run", { json: rescoreBody(event.target) });
      toast("Rescore queued");
      $("#rescore-panel").hidden = true;
      selectedRun = run.id;
      await refresh();
    } catch (error) {
      $("#rescore-error").textContent = error.message;
      $("#rescore-error").hidden = false;
    }
  });
  refresh();
}

PAGES.jobs = initJobs;

function fmtUtc(ms) {
  return `${new Date(ms).toLocaleString([], { timeZone: "UTC", dateStyle: "medium", timeStyle: "short" })} UTC`;
}
