"""One self-contained HTML report of a ``run``: data, variogram, CV, training, maps, parameters.

Plots are embedded as base64 PNGs (:mod:`.report_plots`), so the single file can be mailed or
opened from QGIS' Results Viewer. Every section is optional; missing information is skipped.
"""

from __future__ import annotations

import html
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import report_plots as plots
from .output_set import final_paths

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportContext:
    """What the report shows.

    Attributes
    ----------
    title : str
    data : dict
        ``field``, ``values`` (data units), ``values_t`` (transformed), ``transform``,
        ``coords``, ``crs_name``, ``source``, ``dropped``.
    variogram : dict
        ``model`` (VariogramModel), ``experimental`` (EmpiricalVariogram or None).
    cv : dict or None
        ``protocol`` (text), ``units``, ``metrics`` {method: {metric: value}},
        ``observed``, ``predictions`` {method: array}, ``fold_differences`` (list of dicts).
    training : dict or None
        ``history``, ``best_epochs``, ``metrics``, ``calibration``.
    maps : dict or None
        ``extent`` (xmin, ymin, xmax, ymax) and ``layers`` {name: 2D array}.
    parameters : dict
        Every setting of the run (shown as JSON).
    versions : dict
        Package versions.
    outputs : dict
        Files written (name → path).
    """

    title: str
    data: dict
    variogram: dict
    cv: dict | None = None
    training: dict | None = None
    maps: dict | None = None
    parameters: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}img{max-width:100%}pre{background:#f7f7f7;padding:.8em;
font-size:.8em;overflow-x:auto}.note{color:#555;font-size:.9em}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return "–"
        return f"{v:.4g}"
    return html.escape(str(v))


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}"/>'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{html.escape(h)}</th>'
                   for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i == 0 else ""}">{_fmt(c)}</td>'
                         for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _section_data(d: dict) -> str:
    vals = np.asarray(d["values"], dtype=float)
    rows = [["samples", len(vals)], ["field", d.get("field")],
            ["transform", d.get("transform", "none")], ["minimum", float(vals.min())],
            ["mean", float(vals.mean())], ["median", float(np.median(vals))],
            ["maximum", float(vals.max())], ["standard deviation", float(vals.std())],
            ["CRS", d.get("crs_name")], ["source", d.get("source")]]
    if d.get("dropped"):
        rows.append(["dropped / merged", json.dumps(d["dropped"])])
    img = plots.histogram(vals, str(d.get("field")), d.get("values_t"), d.get("transform", "none"))
    return ("<h2>Data</h2>" + _table(["", "value"], rows) + _img(img, "histogram"))


def _section_variogram(v: dict) -> str:
    model = v["model"]
    ev = v.get("experimental")
    img = plots.variogram(model, ev, v.get("title", ""))
    sample = ""
    if ev is not None and getattr(ev, "subsample_seed", None) is not None:
        sample = (f" Experimental variogram from the pairs of a random subsample of "
                  f"{ev.n_used:,} of {ev.n_points:,} samples (seed {ev.subsample_seed}).")
    return (f"<h2>Variogram</h2><p>Fitted model (transformed units): "
            f"<code>{html.escape(model.to_text())}</code>.{sample}</p>"
            + _candidates_table(v.get("fit") or {}) + _img(img, "variogram"))


def _candidates_table(fit: dict) -> str:
    """Every candidate of an ``auto`` fit: SSE, cross-validation RMSE and MSDR, the winner."""
    cands = fit.get("candidates") or []
    if len(cands) < 2:
        return ""
    rule = ("lowest kriging cross-validation RMSE (ties: MSDR closest to 1, then SSE)"
            if fit.get("selected_by") == "cv" else "lowest weighted SSE")
    rows = [[c.get("text"), c.get("sse"), c.get("cv_rmse"), c.get("msdr"),
             "selected" if c.get("text") == fit.get("selected")
             else f"dropped early ({c.get('cv_scheme')})" if c.get("cv_complete") is False
             else ""] for c in cands]
    return (f"<p>Candidates, selected by {html.escape(rule)}:</p>"
            + _table(["model", "weighted SSE", "CV RMSE", "MSDR", ""], rows))


def _section_cv(cv: dict, coords: np.ndarray | None) -> str:
    metrics = cv.get("metrics", {})
    names = ("me", "mae", "rmse", "r2", "msdr", "ccc", "coverage", "width")
    present = [m for m in names if any(m in metrics[k] for k in metrics)]
    rows = [[method, *[metrics[method].get(m) for m in present]] for method in metrics]
    out = [f"<h2>Cross-validation</h2><p>{html.escape(cv.get('protocol', ''))}</p>",
           _table(["method", *present], rows)]
    out.extend(_cv_transformed(cv, metrics, present))
    diffs = cv.get("fold_differences") or []
    if diffs:
        out.append("<p>Paired difference per fold (hybrid − OK RMSE; negative: hybrid better):</p>")
        out.append(_table(["fold", "n", "RMSE OK", "RMSE hybrid", "difference"],
                          [[d.get("fold"), d.get("n"), d.get("rmse_ok"), d.get("rmse_hybrid"),
                            d.get("difference")] for d in diffs]))
    obs = np.asarray(cv["observed"], dtype=float)
    preds = {k: np.asarray(p, dtype=float) for k, p in cv.get("predictions", {}).items()}
    if preds:
        out.append(_img(plots.cv_scatter(obs, preds, cv.get("units", "")), "CV scatter"))
        key = "hybrid" if "hybrid" in preds else next(iter(preds))
        if coords is not None:
            out.append(_img(plots.residual_map(coords, obs - preds[key],
                                               f"{key} cross-validation residuals"),
                            "residual map"))
    return "".join(out)


def _cv_transformed(cv: dict, metrics: dict, present: list[str]) -> list[str]:
    """The same CV predictions scored in transformed units, and the RMSE ratios in both.

    With a log transform the models are fitted in log units, where a method's gain is spread
    over all samples; in data units a few high values dominate the RMSE. Both are shown so
    that a gain in one is never reported without the other.
    """
    mt = cv.get("metrics_transformed") or {}
    if not mt:
        return []
    names = [m for m in present if any(m in mt[k] for k in mt)]
    kind = f" ({cv['transform']})" if cv.get("transform") else ""
    out = [f"<p>The same predictions in transformed{html.escape(kind)} units:</p>",
           _table(["method", *names], [[k, *[mt[k].get(m) for m in names]] for k in mt])]
    if "ok" in metrics and "ok" in mt:
        ratios = []
        for k in metrics:
            if k == "ok":
                continue
            a = _ratio(metrics[k].get("rmse"), metrics["ok"].get("rmse"))
            b = _ratio(mt[k].get("rmse"), mt["ok"].get("rmse"))
            ratios.append([k, a, b])
        if ratios:
            out.append("<p>RMSE relative to ordinary kriging on the same folds (below 1: "
                       "better than OK):</p>")
            out.append(_table(["method", f"{cv.get('units', 'data')} units", "transformed units"],
                              ratios))
    return out


def _ratio(a, b):
    try:
        return float(a) / float(b) if float(b) > 0 else None
    except (TypeError, ValueError):
        return None


def _base_key(key: str) -> str:
    """``ok`` -> ``OK``; ``ked:sqrt(covariate 1)`` -> ``KED in sqrt(covariate 1)``."""
    name, _, shape = str(key).partition(":")
    return f"{name.upper()} in {shape}" if shape else name.upper()


def _section_training(t: dict) -> str:
    out = ["<h2>Training</h2>"]
    base = (t.get("metrics") or {}).get("base")
    if base:
        scores = ", ".join(f"{_base_key(k)} {_fmt(v)}"
                           for k, v in (base.get("loo_rmse") or {}).items())
        label = str(base.get("label", "OK"))
        if base.get("name") == "ked" and base.get("drift"):
            label += " in " + ", ".join(str(t) for t in base["drift"])
        out.append(f"<p><b>Classical base:</b> {html.escape(label)} — the "
                   f"network learns its residual (leave-one-out RMSE on the training samples, "
                   f"transformed units: {scores}).</p>")
    gate = (t.get("metrics") or {}).get("gate")
    if gate:
        out.append(f"<p><b>Do-no-harm gate:</b> {html.escape(str(gate.get('message', '')))}. "
                   f"Weight of the network's correction: {_fmt(gate.get('weight'))}.</p>")
    if t.get("best_epochs"):
        out.append(f"<p>Best epoch per ensemble member: {html.escape(str(t['best_epochs']))}."
                   "</p>")
    if t.get("metrics"):
        out.append(_table(["training diagnostic", "value"],
                          [[k, v] for k, v in t["metrics"].items()
                           if k not in ("gate", "base")]))
    if t.get("calibration"):
        c = t["calibration"]
        out.append(f"<p class='note'>Split-conformal calibration on {c.get('n')} out-of-fold "
                   f"residuals: quantile {_fmt(c.get('quantile'))} of |residual|/σ for "
                   f"{100 * (1 - float(c.get('alpha', 0.1))):.0f}% intervals.</p>")
    if t.get("history", {}).get("loss"):
        out.append(_img(plots.training_curves(t["history"]), "training curves"))
    return "".join(out)


def _section_maps(m: dict, coords: np.ndarray | None) -> str:
    layers = {k: v for k, v in m["layers"].items() if v is not None}
    if not layers:
        return ""
    return "<h2>Maps</h2>" + _img(plots.maps(layers, m["extent"], coords), "maps")


def write_report(path: str | os.PathLike, ctx: ReportContext) -> Path:
    """Write the report to ``path`` (temporary name, then renamed) and return the path."""
    from .safe_write import write_text_verified

    coords = ctx.data.get("coords")
    coords = None if coords is None else np.asarray(coords, dtype=float)
    parts = [f"<h1>{html.escape(ctx.title)}</h1>",
             f"<p class='note'>Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by "
             f"gcnn-rnn {html.escape(str(ctx.versions.get('gcnn_rnn', '')))}.</p>",
             _section_data(ctx.data), _section_variogram(ctx.variogram)]
    if ctx.cv:
        parts.append(_section_cv(ctx.cv, coords))
    if ctx.training:
        parts.append(_section_training(ctx.training))
    if ctx.maps:
        parts.append(_section_maps(ctx.maps, coords))
    if ctx.outputs:
        parts.append("<h2>Outputs</h2>" + _table(["output", "file"],
                                                 [[k, v] for k, v in ctx.outputs.items()]))
    parts.append("<h2>Parameters and versions</h2><p>Everything needed to reproduce the run:</p>"
                 f"<pre>{html.escape(json.dumps(ctx.parameters, indent=1, default=str))}</pre>"
                 + _table(["package", "version"], [[k, v] for k, v in ctx.versions.items()]))
    doc = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           f"<title>{html.escape(ctx.title)}</title><style>{_CSS}</style></head><body>"
           + "".join(parts) + "</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_verified(path, doc, "report")
    logger.info("report written to %s", final_paths(str(path)))
    return path
