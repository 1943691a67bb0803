// fraudstream dashboard: the case queue (/ui/cases) and one case (/ui/cases/ID). Uses app.js's globals.
"use strict";

const PRIORITY_KIND = { critical: "decline", high: "review", medium: "challenge", low: "closed" };

function priorityPill(priority) { return pill(priority, PRIORITY_KIND[priority] || ""); }

function entityText(c) {
  if (c.entity_kind === "card") return c.card_last4 ? `card ···· ${c.card_last4}` : `card ${c.entity_id.slice(0, 8)}…`;
  return `${c.entity_kind} ${c.entity_id}`;
}

// "in 3 h", "12 min ago": how long until (or since) a case is due.
function fmtDue(ms) {
  const minutes = Math.round((ms - Date.now()) / 60000);
  const span = Math.abs(minutes);
  const text = span < 60 ? `${span} min` : span < 2880 ? `${Math.round(span / 60)} h` : `${Math.round(span / 1440)} d`;
  return minutes >= 0 ? `in ${text}` : `${text} ago`;
}

function dueCell(c) {
  if (c.status === "closed") return `<span class="muted">closed ${fmtTime(c.closed_at_ms)}</span>`;
  const late = c.overdue ? ` overdue" title="Overdue: was due ${esc(fmtTime(c.due_at_ms))}` : `" title="${esc(fmtTime(c.due_at_ms))}`;
  return `<span class="due${late}">${c.overdue ? "overdue · " : ""}${esc(fmtDue(c.due_at_ms))}</span>`;
}

// --- the queue -------------------------------------------------------------------------------

const caseQueue = { items: [], selectedId: null, cursors: [0], page: 0 };

function caseSelected() {
  const index = caseQueue.items.findIndex((c) => c.id === caseQueue.selectedId);
  return index >= 0 ? index : 0;
}

function markCaseSelected() {
  const selected = caseSelected();
  $$("#cases-rows tr[data-index]").forEach((r) => r.classList.toggle("selected", Number(r.dataset.index) === selected));
}

function caseFilters() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($("#case-filters")).entries()) if (value.trim() !== "") params.set(name, value.trim());
  return params;
}

async function loadCases() {
  const params = caseFilters();
  history.replaceState(null, "", params.size ? `?${params}` : location.pathname);
  params.set("limit", "50");
  params.set("cursor", String(caseQueue.cursors[caseQueue.page]));
  const rows = $("#cases-rows");
  let data;
  try {
    data = await api(`/v1/cases?${params}`);
  } catch (error) {
    const detail = error.body && error.body.errors ? error.body.errors.map((e) => `${e.field}: ${e.problem}`).join("; ") : error.message;
    rows.innerHTML = `<tr><td colspan="8" class="inline-error">${esc(detail)}</td></tr>`;
    return;
  }
  caseQueue.items = data.items;
  caseQueue.cursors[caseQueue.page + 1] = data.next_cursor;
  if (!caseQueue.items.some((c) => c.id === caseQueue.selectedId)) caseQueue.selectedId = caseQueue.items[0]?.id ?? null;
  rows.innerHTML = caseQueue.items.length ? caseQueue.items.map((c, i) => `
    <tr data-index="${i}" data-case-id="${esc(c.id)}" class="${c.overdue ? "late" : ""}">
      <td>${priorityPill(c.priority)}</td>
      <td>${dueCell(c)}</td>
      <td class="num">${scoreCell(c.risk)}</td>
      <td><a href="/ui/cases/${encodeURIComponent(c.id)}">${esc(entityText(c))}</a></td>
      <td class="num">${fmtInt(c.alert_count)}</td>
      <td class="status">${pill(c.status)}${c.verdict ? ` ${pill(c.verdict)}` : ""}</td>
      <td>${esc(c.assignee || "–")}</td>
      <td class="actions">${can.review && c.status !== "closed" ? `<button type="button" class="small" data-act="take" ${c.status === "in_review" ? "disabled" : ""}>Take</button>
        <button type="button" class="small danger" data-act="fraud">Fraud</button>
        <button type="button" class="small ok" data-act="legit">Legit</button>` : ""}</td>
    </tr>`).join("") : `<tr><td colspan="8" class="muted">No case matches. Alerts on one card, user or device form cases as they arrive.</td></tr>`;
  $("#cases-summary").textContent = `Page ${caseQueue.page + 1} · ${caseQueue.items.length} shown`;
  $("#cases-prev").disabled = caseQueue.page === 0;
  $("#cases-next").disabled = data.next_cursor == null;
  markCaseSelected();
}

async function caseAct(index, action) {
  const c = caseQueue.items[index];
  if (!c || !can.review || c.status === "closed") return;
  try {
    if (action === "take") {
      const taken = await api(`/v1/cases/${encodeURIComponent(c.id)}/assign`, { method: "POST" });
      toast(`${taken.assignee} took ${entityText(c)}`);
    } else {
      const closed = await api(`/v1/cases/${encodeURIComponent(c.id)}/close`, { json: { verdict: action } });
      toast(`Closed as ${action}: ${closed.labels.length} transactions labelled`);
    }
  } catch (error) { toast(`Not saved: ${error.message}`); }
  await loadCases();
}

function initCases() {
  const form = $("#case-filters");
  for (const [name, value] of new URLSearchParams(location.search).entries()) {
    const field = form.elements.namedItem(name);
    if (field) field.value = value;
  }
  const restart = () => { caseQueue.cursors = [0]; caseQueue.page = 0; loadCases(); };
  form.addEventListener("submit", (event) => { event.preventDefault(); restart(); });
  form.addEventListener("reset", () => setTimeout(restart));
  $("#cases-prev").addEventListener("click", () => { caseQueue.page -= 1; loadCases(); });
  $("#cases-next").addEventListener("click", () => { caseQueue.page += 1; loadCases(); });
  $("#cases-rows").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-index]");
    if (!row) return;
    caseQueue.selectedId = row.dataset.caseId;
    markCaseSelected();
    const button = event.target.closest("button[data-act]");
    if (button) caseAct(caseSelected(), button.dataset.act);
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
    const keys = { j: 1, ArrowDown: 1, k: -1, ArrowUp: -1 };
    if (event.key in keys) {
      const next = Math.max(0, Math.min(caseQueue.items.length - 1, caseSelected() + keys[event.key]));
      caseQueue.selectedId = caseQueue.items[next]?.id ?? null;
      markCaseSelected();
      event.preventDefault();
    } else if (event.key === "f") caseAct(caseSelected(), "fraud");
    else if (event.key === "l") caseAct(caseSelected(), "legit");
    else if (event.key === "a") caseAct(caseSelected(), "take");
    else if (event.key === "Enter" && caseQueue.selectedId) {
      location.href = `/ui/cases/${encodeURIComponent(caseQueue.selectedId)}`;
    }
  });
  alertListeners.push(() => loadCases());
  loadCases();
  setInterval(loadCases, 10000);
}

// --- one case --------------------------------------------------------------------------------

function caseAlertRows(c) {
  const open = can.review && c.status !== "closed";
  return c.alerts.map((a) => `
    <tr data-transaction-id="${esc(a.transaction_id)}">
      <td class="num">${scoreCell(a.score)}</td>
      <td><a href="/ui/transactions/${encodeURIComponent(a.transaction_id)}">${esc(a.transaction_id)}</a><div class="muted">${fmtTime(a.timestamp_ms)}</div></td>
      <td class="num">${fmtMoney(a.amount, a.currency)}</td>
      <td>${esc(a.user_id)}<div class="muted">${esc([a.merchant_id, a.location, a.country].filter(Boolean).join(" · "))}</div></td>
      <td><ul class="case-reasons">${(a.reasons || []).map((r) => `<li>${esc(r.text)} <span class="muted mono">${esc(r.code)}</span></li>`).join("")}</ul></td>
      <td>${pill(a.status)}${a.verdict ? ` ${pill(a.verdict)}` : ""}</td>
      ${open ? `<td><select class="tx-verdict" aria-label="Verdict for ${esc(a.transaction_id)}">
        <option value="">as the case</option><option value="fraud">fraud</option><option value="legit">legit</option></select></td>` : ""}
    </tr>`).join("");
}

function caseControls(c) {
  if (!can.review) return `<p class="muted">Your role can read but not work cases.</p>`;
  if (c.status === "closed") return `<p>Closed ${fmtTime(c.closed_at_ms)} with the verdict ${pill(c.verdict)}.</p>`;
  return `
    <form id="assign-form" class="row" aria-label="Assign the case">
      <label>Assign to <input name="assignee" id="assignee" required maxlength="100" placeholder="analyst's name" autocomplete="off" value="${esc(c.assignee || "")}"></label>
      <button type="submit">Assign</button>
    </form>
    <form id="close-form" class="stack wide section-gap" aria-label="Close the case">
      <label>Verdict for every transaction (a transaction's own choice above wins)
        <select name="verdict" id="case-verdict"><option value="fraud">confirmed fraud</option><option value="legit">false positive (legit)</option></select>
      </label>
      <label>Note <textarea name="note" id="close-note" rows="2" maxlength="2000" placeholder="What you checked"></textarea></label>
      <div class="row"><button type="submit" class="danger" id="close-case">Close the case</button></div>
    </form>`;
}

// A snooze from the case: the analyst who found the alerts legitimate (a cardholder travelling, a
// known bulk buyer) silences one rule the case's alerts hit, or every review, for its entity a while.
function snoozeForm(c) {
  if (!can.review) return "";
  const rules = [...new Set(c.alerts.flatMap((a) => (a.reasons || []).filter((r) => r.kind === "rule").map((r) => r.code)))];
  return `<section class="panel"><h2>Snooze this ${esc(c.entity_kind)}</h2>
    <form id="snooze-form" class="stack wide" aria-label="Snooze this ${esc(c.entity_kind)}">
      <label>Silence <select id="snooze-rule"><option value="">every review</option>${rules.map((r) => `<option value="${esc(r)}">the rule ${esc(r)}</option>`).join("")}</select></label>
      <label>For <select id="snooze-days"><option value="1">1 day</option><option value="7">7 days</option><option value="30">30 days</option></select></label>
      <label>Reason <input id="snooze-reason" maxlength="500" autocomplete="off" placeholder="e.g. the cardholder is travelling"></label>
      <div class="row"><button type="submit" id="snooze-case">Snooze</button></div>
    </form></section>`;
}

function auditDetails(details) {
  return Object.entries(details || {}).filter(([, v]) => v != null && v !== "")
    .map(([k, v]) => `${esc(k)}: ${esc(typeof v === "object" ? JSON.stringify(v) : v)}`).join(" · ");
}

async function initCase() {
  const box = $("#case");
  const id = box.dataset.caseId;
  let c;
  try {
    c = await api(`/v1/cases/${encodeURIComponent(id)}`);
  } catch (error) {
    box.innerHTML = `<p class="inline-error">${esc(error.status === 404 ? `No case ${id}.` : error.message)}</p>`;
    return;
  }
  const open = can.review && c.status !== "closed";
  const comments = c.comments.map((m) => `<li><div><strong>${esc(m.author)}</strong> <span class="muted">${fmtTime(m.at_ms)}</span></div><p>${esc(m.body)}</p></li>`).join("");
  const audit = c.audit.map((a) => `<li>${fmtTime(a.at_ms)} · <strong>${esc(a.actor)}</strong> ${esc(a.action)} <span class="muted">${auditDetails(a.details)}</span></li>`).join("");
  setHTML(box, `
    <div class="grid detail">
      <section class="panel">
        <div class="panel-head"><h2>Case <span class="mono">${esc(c.id)}</span></h2><span id="case-status">${pill(c.status)}${c.verdict ? ` ${pill(c.verdict)}` : ""}</span></div>
        <div class="row detail-head">
          <div><div class="big-score">${esc(c.risk)}</div><div class="muted">riskiest alert</div></div>
          <dl class="facts">
            <dt>Entity</dt><dd>${esc(c.entity_kind)} <span class="mono">${esc(c.entity_id)}</span></dd>
            <dt>Priority</dt><dd>${priorityPill(c.priority)}</dd>
            <dt>Due</dt><dd>${dueCell(c)} <span class="muted">${fmtTime(c.due_at_ms)}</span></dd>
            <dt>Opened</dt><dd>${fmtTime(c.opened_at_ms)}</dd>
            <dt>Assignee</dt><dd id="case-assignee">${esc(c.assignee || "–")}</dd>
          </dl>
        </div>
        <h2>${c.alert_count} alert${c.alert_count === 1 ? "" : "s"}, riskiest first</h2>
        <table class="data" id="case-alerts">
          <thead><tr><th scope="col" class="num">Score</th><th scope="col">Transaction</th><th scope="col" class="num">Amount</th><th scope="col">User · where</th>
            <th scope="col">Reasons</th><th scope="col">Status</th>${open ? `<th scope="col">Own verdict</th>` : ""}</tr></thead>
          <tbody>${caseAlertRows(c)}</tbody>
        </table>
      </section>
      <div>
        <section class="panel" id="case-work"><h2>Work the case</h2>${caseControls(c)}</section>
        <section class="panel">
          <h2>Comments</h2>
          <ol class="comments" id="case-comments">${comments || `<li class="muted">No comment yet.</li>`}</ol>
          ${can.review ? `<form id="comment-form" class="stack wide" aria-label="Add a comment">
            <label>Comment <textarea name="body" id="comment-body" rows="3" maxlength="5000" required></textarea></label>
            <div class="row"><button type="submit" class="primary">Add comment</button></div></form>` : ""}
        </section>
        ${snoozeForm(c)}
        <section class="panel"><h2>Audit log</h2><ul class="muted" id="case-audit">${audit}</ul></section>
      </div>
    </div>`);
  const reload = () => setTimeout(() => location.reload(), 400);
  $("#assign-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const done = await api(`/v1/cases/${encodeURIComponent(id)}/assign`, { json: { assignee: $("#assignee").value.trim() } });
      toast(`Assigned to ${done.assignee}`);
      reload();
    } catch (error) { toast(`Not saved: ${error.message}`); }
  });
  $("#close-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const verdicts = {};
    $$(".tx-verdict").forEach((s) => { if (s.value) verdicts[s.closest("tr").dataset.transactionId] = s.value; });
    const body = { verdict: $("#case-verdict").value, verdicts, note: $("#close-note").value || null };
    try {
      const closed = await api(`/v1/cases/${encodeURIComponent(id)}/close`, { json: body });
      toast(`Closed: ${closed.labels.length} transactions labelled`);
      reload();
    } catch (error) { toast(`Not closed: ${error.message}`); }
  });
  $("#snooze-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const until = new Date(Date.now() + Number($("#snooze-days").value) * 86400000).toISOString();
    const body = { entity_kind: c.entity_kind, entity_id: c.entity_id, until, reason: $("#snooze-reason").value || `from case ${id}` };
    if ($("#snooze-rule").value) body.rule = $("#snooze-rule").value;
    try {
      const snooze = await api("/v1/snoozes", { json: body });
      toast(`Snoozed ${snooze.rule ? `the rule ${snooze.rule}` : "every review"} for this ${c.entity_kind} until ${fmtTime(snooze.until_ms)}`);
    } catch (error) {
      const errors = error.body && error.body.errors;
      toast(`Not snoozed: ${errors ? errors.map((e) => `${e.field}: ${e.problem}`).join("; ") : error.message}`);
    }
  });
  $("#comment-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api(`/v1/cases/${encodeURIComponent(id)}/comments`, { json: { body: $("#comment-body").value } });
      reload();
    } catch (error) {
      const errors = error.body && error.body.errors;
      toast(`Not saved: ${errors ? errors.map((e) => `${e.field}: ${e.problem}`).join("; ") : error.message}`);
    }
  });
}

PAGES.cases = initCases;
PAGES.case = initCase;
