"""Evaluation reports: the metrics as JSON, and an HTML page with its charts drawn as inline SVG."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import precision_recall_curve, roc_curve

__all__ = ["write_report"]

_W, _H, _PAD = 420, 260, 36


def _polyline(xs: npt.NDArray[np.floating[Any]], ys: npt.NDArray[np.floating[Any]], colour: str) -> str:
    points = " ".join(
        f"{_PAD + x * (_W - 2 * _PAD):.1f},{_H - _PAD - y * (_H - 2 * _PAD):.1f}" for x, y in zip(xs, ys)
    )
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'


def _frame(title: str, x_label: str, y_label: str, body: str) -> str:
    """An SVG chart of [0, 1] x [0, 1]: axes with ticks at 0, 0.5 and 1, their labels, a title."""
    ticks = ""
    for v in (0.0, 0.5, 1.0):
        x, y = _PAD + v * (_W - 2 * _PAD), _H - _PAD - v * (_H - 2 * _PAD)
        ticks += (
            f'<line x1="{x:.1f}" y1="{_H - _PAD}" x2="{x:.1f}" y2="{_H - _PAD + 4}" stroke="#555"/>'
            f'<text x="{x:.1f}" y="{_H - _PAD + 15}" text-anchor="middle" font-size="10">{v:g}</text>'
            f'<line x1="{_PAD - 4}" y1="{y:.1f}" x2="{_PAD}" y2="{y:.1f}" stroke="#555"/>'
            f'<text x="{_PAD - 6}" y="{y + 3:.1f}" text-anchor="end" font-size="10">{v:g}</text>'
        )
    axes = (
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#555"/>'
        f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#555"/>'
        f"{ticks}"
        f'<text x="{_W / 2}" y="{_H - 4}" text-anchor="middle" font-size="12">{html.escape(x_label)}</text>'
        f'<text x="10" y="{_H / 2}" font-size="12" transform="rotate(-90 10 {_H / 2})" '
        f'text-anchor="middle">{html.escape(y_label)}</text>'
        f'<text x="{_W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="600">'
        f"{html.escape(title)}</text>"
    )
    return f'<svg role="img" aria-label="{html.escape(title)}" width="{_W}" height="{_H}">{axes}{body}</svg>'


def _roc_curve(truth: npt.NDArray[np.bool_], probability: npt.NDArray[np.floating[Any]]) -> str:
    fpr, tpr, _ = roc_curve(truth, probability)
    step = max(1, len(fpr) // 400)
    chance = _polyline(np.array([0.0, 1.0]), np.array([0.0, 1.0]), "#bbb")
    return _frame(
        "ROC curve",
        "false positive rate (legitimate flagged)",
        "true positive rate (recall)",
        chance + _polyline(fpr[::step], tpr[::step], "#ea580c"),
    )


def _pr_curve(truth: npt.NDArray[np.bool_], probability: npt.NDArray[np.floating[Any]]) -> str:
    precision, recall, _ = precision_recall_curve(truth, probability)
    step = max(1, len(recall) // 400)
    return _frame(
        "Precision–recall curve",
        "recall (share of frauds caught)",
        "precision (share of flags that are fraud)",
        _polyline(recall[::step], precision[::step], "#2563eb"),
    )


def _score_histogram(truth: npt.NDArray[np.bool_], probability: npt.NDArray[np.floating[Any]]) -> str:
    bins = np.linspace(0, 1, 21)
    body = ""
    for mask, colour in ((~truth, "#16a34a"), (truth, "#dc2626")):
        counts, _ = np.histogram(probability[mask], bins=bins)
        share = counts / max(1, counts.sum())
        body += _polyline(bins[:-1] + 0.025, share / max(share.max(), 1e-9), colour)
    return _frame(
        "Score distribution (green: legitimate, red: fraud)", "probability", "share of class (scaled)", body
    )


def _daily_precision(
    day: npt.NDArray[np.integer[Any]], truth: npt.NDArray[np.bool_], flagged: npt.NDArray[np.bool_]
) -> str:
    days = np.unique(day)
    if len(days) < 2:
        return ""
    values = np.array(
        [truth[(day == d) & flagged].mean() if ((day == d) & flagged).any() else 0.0 for d in days]
    )
    xs = (days - days.min()) / max(1, days.max() - days.min())
    return _frame(
        "Precision of flags per day",
        f"day ({len(days)} days, first to last)",
        "precision of flags",
        _polyline(xs, values, "#7c3aed"),
    )


_ABOUT = ("model", "data", "window_from", "window_to", "label_delay")
_THRESHOLD_COLUMNS = (
    ("threshold", "score ≥"),
    ("flagged", "flagged"),
    ("review_rate", "review rate"),
    ("flagged_per_day", "flagged per day"),
    ("frauds_caught", "frauds caught"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("fraud_amount_caught", "fraud amount caught"),
    ("fraud_amount_caught_share", "share of fraud amount"),
)


def _cell(key: str, value: Any) -> str:
    if isinstance(value, float) and np.isnan(value):
        return "—"
    if isinstance(value, float) and key in ("review_rate", "fraud_amount_caught_share"):
        return f"{value:.2%}"
    if isinstance(value, float) and key == "fraud_amount_caught":
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _threshold_rows(table: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in _THRESHOLD_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(k, row[k])}</td>" for k, _ in _THRESHOLD_COLUMNS) + "</tr>"
        for row in table
    )
    return f"<table class=thresholds><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(
    report: dict[str, Any],
    truth: npt.NDArray[np.bool_],
    probability: npt.NDArray[np.floating[Any]],
    flagged: npt.NDArray[np.bool_],
    day: npt.NDArray[np.integer[Any]],
    directory: Path,
) -> tuple[Path, Path]:
    """``report.json`` and ``report.html``: what is shown (model, data, window, label delay), the metrics,
    ROC and precision-recall curves, the score distribution, precision per day and the threshold
    table."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "report.json"
    json_path.write_text(json.dumps(report, indent=2))
    about = "".join(
        f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{html.escape(str(report[k]))}</td></tr>"
        for k in _ABOUT
        if k in report
    )
    rows = "".join(
        f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{_cell(k, v)}</td></tr>"
        for k, v in report.items()
        if k not in _ABOUT and not isinstance(v, dict | list)
    )
    scenarios = report.get("recall_by_scenario", {})
    scenario_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in scenarios.items())
    both = 0 < int(truth.sum()) < len(truth)
    charts = (
        (_roc_curve(truth, probability) + _pr_curve(truth, probability) if both else "")
        + _score_histogram(truth, probability)
        + _daily_precision(day, truth, flagged)
    )
    thresholds = report.get("threshold_table", [])
    style = (
        "body{font:14px system-ui,sans-serif;margin:24px;color:#111}"
        "table{border-collapse:collapse;margin:12px 0}"
        "th,td{text-align:left;padding:4px 12px;border-bottom:1px solid #ddd}svg{margin:8px 16px 8px 0}"
    )
    head = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fraudstream evaluation</title>'
    page = f"""{head}<style>{style}</style></head>
<body><h1>Evaluation</h1><table class=about>{about}</table>
<h2>Metrics</h2><table class=metrics>{rows}</table>
{"<h2>Recall per scenario</h2><table>" + scenario_rows + "</table>" if scenario_rows else ""}
<h2>Charts</h2><div>{charts}</div>
{
        "<h2>Choosing a threshold</h2><p>What flagging every transaction whose probability is at or above "
        "each threshold would have given on this window.</p>" + _threshold_rows(thresholds)
        if thresholds
        else ""
    }
</body></html>"""
    html_path = directory / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return json_path, html_path
