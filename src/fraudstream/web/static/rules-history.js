// Rules page: the stored rule set versions, each restorable as the next version
// (POST /v1/rules/versions/{n}/activate). Loaded after app.js, whose globals it uses.

async function loadRuleHistory() {
  const rules = await api("/v1/rules");
  $("#versions-rows").innerHTML = rules.versions.map((v) => `
    <tr data-version="${esc(v.version)}">
      <td class="mono">v${esc(v.version)}</td>
      <td>${fmtTime(v.created_at_ms)}</td>
      <td>${esc(v.actor || "")}</td>
      <td>${v.active ? pill("active", "on") : ""}</td>
      <td class="actions">${can.admin && !v.active ? `<button type="button" class="small" data-act="restore">Restore this version</button>` : ""}</td>
    </tr>`).join("") || `<tr><td colspan="5" class="muted">No stored version.</td></tr>`;
}

function initRuleHistory() {
  const dialog = $("#restore-confirm");
  $("#versions-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-act=restore]");
    if (!button) return;
    const version = button.closest("tr").dataset.version;
    $("#restore-text").textContent = `The rules of version ${version} become a new version and decide every transaction from the next one on.`;
    dialog.returnValue = "";
    dialog.showModal();
    dialog.addEventListener("close", async () => {
      if (dialog.returnValue !== "ok") return;
      try {
        const restored = await api(`/v1/rules/versions/${encodeURIComponent(version)}/activate`, { method: "POST" });
        toast(`Version ${version} restored: rule set version ${restored.version} is live`);
      } catch (error) { toast(`Not restored: ${error.message}`); }
      await loadRules();
    }, { once: true });
  });
}

// The history follows every change the page makes (a save, a toggle, a restore): app.js reloads
// the rules through loadRules, so the history reloads with them.
const loadRulesAndVersions = loadRules;
loadRules = async function () {
  await Promise.all([loadRulesAndVersions(), loadRuleHistory()]);
};

const initRulesPage = PAGES.rules;
PAGES.rules = () => { initRuleHistory(); initRulesPage(); };
