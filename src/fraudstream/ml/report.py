"""Evaluation reports: the metrics as JSON, and an HTML page with its charts drawn as inline SVG."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import precision_recall_curve

__all__ = ["write_report"]

_W, _H, _PAD = 420, 260, 36


def _polyline(xs: npt.NDArray[np.floating[Any]], ys: npt.NDArray[np.floating[Any]], colour: str) -> str:
    points = " ".join(
        f"{_PAD + x * (_W - 2 * _PAD):.1f},{_H - _PAD - y * (_H - 2 * _PAD):.1f}" for x, y in zip(xs, ys)
    )
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'


def _frame(title: str, x_label: str, y_label: str, body: str) -> str:
    axes = (
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#555"/>'
        f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#555"/>'
        f'<text x="{_W / 2}" y="{_H - 6}" text-anchor="middle" font-size="12">{html.escape(x_label)}</text>'
        f'<text x="12" y="{_H / 2}" font-size="12" transform="rotate(-90 12 {_H / 2})" '
        f'text-anchor="middle">{html.escape(y_label)}</text>'
        f'<text x="{_W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="600">'
        f"{html.escape(title)}</text>"
    )
    return f'<svg role="img" aria-label="{html.escape(title)}" width="{_W}" height="{_H}">{axes}{body}</svg>'


def _pr_curve(truth: npt.NDArray[np.bool_], probability: npt.NDArray[np.floating[Any]]) -> str:
    precision, recall, _ = precision_recall_curve(truth, probability)
    step = max(1, len(recall) // 400)
    return _frame(
        "Precision–recall", "recall", "precision", _polyline(recall[::step], precision[::step], "#2563eb")
    )


def _score_histogram(truth: npt.NDArray[np.bool_], probability: npt.NDArray[np.floating[Any]]) -> str:
    bins = np.linspace(0, 1, 21)
    body = ""
    for mask, colour in ((~truth, "#16a34a"), (truth, "#dc2626")):
        counts, _ = np.histogram(probability[mask], bins=bins)
        share = counts / max(1, counts.sum())
        body += _polyline(bins[:-1] + 0.025, share / max(share.max(), 1e-9), colour)
    return _frame("Score distribution (green: legitimate, red: fraud)", "probability", "share (scaled)", body)


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
    return _frame("Precision of flags per day", "day", "precision", _polyline(xs, values, "#7c3aed"))


def write_report(
    report: dict[str, Any],
    truth: npt.NDArray[np.bool_],
    probability: npt.NDArray[np.floating[Any]],
    flagged: npt.NDArray[np.bool_],
    day: npt.NDArray[np.integer[Any]],
    directory: Path,
) -> tuple[Path, Path]:
    """``report.json`` and ``report.html`` (metrics table, PR curve, score distribution, daily precision)."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "report.json"
    json_path.write_text(json.dumps(report, indent=2))
    rows = "".join(
        f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in report.items()
        if not isinstance(v, dict)
    )
    scenarios = report.get("recall_by_scenario", {})
    scenario_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in scenarios.items())
    charts = (
        _pr_curve(truth, probability)
        + _score_histogram(truth, probability)
        + _daily_precision(day, truth, flagged)
    )
    style = (
        "body{font:14px system-ui,sans-serif;margin:24px;color:#111}"
        "table{border-collapse:collapse;margin:12px 0}"
        "th,td{text-align:left;padding:4px 12px;border-bottom:1px solid #ddd}svg{margin:8px 16px 8px 0}"
    )
    head = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fraudstream evaluation</title>'
    page = f"""{head}<style>{style}</style></head>
<body><h1>Evaluation</h1><table>{rows}</table>
{"<h2>Recall per scenario</h2><table>" + scenario_rows + "</table>" if scenario_rows else ""}
<h2>Charts</h2><div>{charts}</div></body></html>"""
    html_path = directory / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return json_path, html_path
