// Export buttons (Transactions, Review queue): download every row the page lists, with its filters and
// order, as CSV or Parquet. The file comes from the API's export routes (/v1/transactions.csv, ...),
// which the browser fetches with the dashboard's cookie; the server names the file.
"use strict";

// The query of an export: the button's own (data-export-query), and for a page with a filter form
// the filters and order it applied (kept in the address by the page); never a page's cursor or size.
function exportQuery(button) {
  const params = new URLSearchParams(button.dataset.exportQuery || "");
  if (button.hasAttribute("data-export-filters")) {
    for (const [name, value] of new URLSearchParams(location.search)) {
      if (name !== "limit" && name !== "cursor") params.set(name, value);
    }
  }
  return params;
}

function startExport(button) {
  const query = exportQuery(button).toString();
  const link = document.createElement("a");
  link.href = query ? `${button.dataset.export}?${query}` : button.dataset.export;
  link.download = "";
  document.body.append(link);
  link.click();
  link.remove();
  const format = button.dataset.export.endsWith(".csv") ? "CSV" : "Parquet";
  toast(`Exporting ${button.dataset.exportWhat || "rows"} as ${format}…`);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of $$("button[data-export]")) button.addEventListener("click", () => startExport(button));
});
