// fraudstream dashboard: the audit log (/ui/audit), filtered, newest first. Uses app.js's globals.
"use strict";

const auditState = { cursors: [null], page: 0 };

function auditQuery() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($("#audit-filters")).entries()) {
    if (value.trim() === "") continue;
    params.set(name, name === "since" || name === "until" ? new Date(value).toISOString() : value.trim());
  }
  return params;
}

function auditDetailText(details) {
  return Object.entries(details || {}).filter(([, v]) => v != null && v !== "")
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ");
}

// A subject links to what it names, where the dashboard has a page for it.
function auditSubject(entry) {
  const subject = entry.subject || "";
  if (subject.startsWith("case_")) return `<a href="/ui/cases/${encodeURIComponent(subject)}">${esc(subject)}</a>`;
  if (/alert/.test(entry.action)) return `<a href="/ui/transactions/${encodeURIComponent(subject)}">${esc(subject)}</a>`;
  return esc(subject || "–");
}

async function loadAudit() {
  const params = auditQuery();
  history.replaceState(null, "", params.size ? `?${params}` : location.pathname);
  params.set("limit", "50");
  const cursor = auditState.cursors[auditState.page];
  if (cursor != null) params.set("cursor", cursor);
  const rows = $("#audit-rows");
  let data;
  try {
    data = await api(`/v1/audit?${params}`);
  } catch (error) {
    const detail = error.body && error.body.errors ? error.body.errors.map((e) => `${e.field}: ${e.problem}`).join("; ") : error.message;
    rows.innerHTML = `<tr><td colspan="5" class="inline-error">${esc(detail)}</td></tr>`;
    return;
  }
  auditState.cursors[auditState.page + 1] = data.next_cursor;
  const select = $("#audit-action");
  const chosen = select.value;
  select.innerHTML = `<option value="">any</option>${data.actions.map((a) => `<option>${esc(a)}</option>`).join("")}`;
  select.value = chosen;
  rows.innerHTML = data.items.length ? data.items.map((e) => `
    <tr data-action="${esc(e.action)}">
      <td>${fmtTime(e.at_ms)}</td><td>${esc(e.actor)}</td><td class="mono">${esc(e.action)}</td>
      <td>${auditSubject(e)}</td><td class="muted">${esc(auditDetailText(e.details))}</td>
    </tr>`).join("") : `<tr><td colspan="5" class="muted">Nothing in the audit log matches these filters.</td></tr>`;
  $("#audit-summary").textContent = `Page ${auditState.page + 1} · ${data.items.length} shown`;
  $("#audit-prev").disabled = auditState.page === 0;
  $("#audit-next").disabled = data.next_cursor == null;
}

function initAudit() {
  const form = $("#audit-filters");
  const incoming = new URLSearchParams(location.search);
  for (const [name, value] of incoming.entries()) {
    const field = form.elements.namedItem(name);
    if (!field) continue;
    if (name === "action") field.innerHTML += `<option>${esc(value)}</option>`;
    field.value = name === "since" || name === "until" ? value.slice(0, 16) : value;
  }
  const restart = () => { auditState.cursors = [null]; auditState.page = 0; loadAudit(); };
  form.addEventListener("submit", (event) => { event.preventDefault(); restart(); });
  form.addEventListener("reset", () => setTimeout(restart));
  $("#audit-action").addEventListener("change", restart);
  $("#audit-prev").addEventListener("click", () => { auditState.page -= 1; loadAudit(); });
  $("#audit-next").addEventListener("click", () => { auditState.page += 1; loadAudit(); });
  loadAudit();
}

PAGES.audit = initAudit;
