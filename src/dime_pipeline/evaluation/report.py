"""The results report: one self-contained HTML file (inline CSS, figures as base64 PNG, no
external resources) that opens from disk.

Order: summary table per family × method (at a glance), one section per family (tables, maps,
scatter, Bland–Altman, staging, ROIs, edges), noise, sweeps, training, phantoms, metric
definitions, config and provenance. Built from ``results/metrics/*.json`` and the figures that
``dime-pipeline evaluate`` wrote (``manifest.json``).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dime_pipeline.errors import UserError
from dime_pipeline.evaluation import figures
from dime_pipeline.evaluation.evaluate import (
    METRIC_FILES,
    method_title,
    snr_title,
    versions,
)
from dime_pipeline.evaluation.figure_set import SWEEP_TITLES, read_manifest
from dime_pipeline.evaluation.staging import STAGE_READINGS, STAGES
from dime_pipeline.textio import write_text_atomic

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_ROI_ROWS = 40

# Summary columns: (headline key, header, format, what is better: "high", "low", "zero", None).
COLUMNS: tuple[tuple[str, str, str, str | None], ...] = (
    ("n_samples", "samples", "d", None),
    ("coverage_pct", "coverage %", ".0f", "high"),
    ("pearson_r", "r", ".3f", "high"),
    ("roi_pearson_r", "r (ROI)", ".3f", "high"),
    ("r2", "R²", ".3f", "high"),
    ("bias_kpa", "bias kPa", "+.2f", "zero"),
    ("bias_pct", "bias %", "+.1f", "zero"),
    ("rmse_kpa", "RMSE kPa", ".2f", "low"),
    ("mape_pct", "MAPE %", ".1f", "low"),
    ("ba_limits", "BA 95 % limits kPa (ROI)", "", None),
    ("cv_pct", "CV %", ".1f", "low"),
    ("edge_width_mm", "edge 10–90 % mm", ".2f", "low"),
    ("stage_agreement_pct", "stage agreement %", ".0f", "high"),
)

DEFINITIONS = (
    (
        "Evaluated pixels",
        "tissue pixels (ground-truth mask, |G*| > 0) where the method returned "
        "a finite estimate; coverage = evaluated / tissue pixels.",
    ),
    (
        "r (Pearson)",
        "correlation of estimated and true |G*| over the evaluated pixels (pooled "
        "over all samples of a family); undefined for a constant truth.",
    ),
    (
        "R²",
        "1 − Σ(e − t)² / Σ(t − t̄)² about the identity line (penalises bias and scale "
        "errors; can be negative), over the same pixels.",
    ),
    ("bias", "mean(e − t) in kPa; in % as 100 · mean(e − t) / mean(t). Positive: overestimation."),
    ("RMSE", "sqrt(mean((e − t)²)) in kPa over the evaluated pixels."),
    ("MAPE", "100 · mean(|e − t| / t) in % over the evaluated pixels."),
    (
        "Bland–Altman",
        "on ROI means (one pair per region and sample): mean difference e − t and "
        "95 % limits mean ± 1.96 SD (sample SD), kPa; abscissa (t + e) / 2.",
    ),
    (
        "ROI",
        "a ground-truth region eroded by one pixel (cross-shaped), so partial-volume "
        "boundary pixels and the tissue edge are left out; ROI mean = mean estimate over its "
        "estimated pixels.",
    ),
    (
        "CV",
        "inter-pixel coefficient of variation 100 · SD / mean (%) of the estimate inside the "
        "ROI of each homogeneous region (ground-truth CV ≤ 1 %), averaged over regions. The "
        "ground-truth CV is shown for reference.",
    ),
    (
        "edge 10–90 %",
        "across each inclusion boundary (ground-truth labels; the largest region "
        "is the background): mean |G*| in one-voxel bins of signed distance to the boundary within "
        "± 6 voxels, normalised between its outside and inside plateaus; distance from the 10 % "
        "to the 90 % level around the first 50 % crossing, in mm. A perfectly sharp step measures "
        "0.8 voxel; an edge whose contrast is below 20 % of the true step is unresolved.",
    ),
    (
        "stage agreement",
        "fibrosis class (below) of the liver ROI mean of estimate vs truth; "
        "liver ROI = the region named 'liver', else the largest region. Exact agreement, "
        "within-one-class agreement and Cohen's κ.",
    ),
)


@dataclass
class ReportInputs:
    metrics: dict[str, dict[str, Any]]
    figures: list[dict[str, Any]]
    figures_dir: Path
    config_text: str | None = None
    training_png: bytes | None = None
    previews: list[tuple[str, bytes]] = field(default_factory=list)


def build_report(
    metrics_dir: str | Path,
    figures_dir: str | Path,
    out: str | Path,
    config: str | Path | None = None,
    training_log: str | Path | None = None,
    previews: Sequence[str | Path] = (),
    training_figure: str | Path | None = None,
) -> Path:
    """Write the HTML report to ``out`` (atomically); ``training_figure`` also keeps the training
    curves as a PNG file (for ``snakemake --report``)."""
    inputs = ReportInputs(
        metrics=load_metrics(metrics_dir),
        figures=read_manifest(figures_dir),
        figures_dir=Path(figures_dir),
        config_text=_read_config(config),
        training_png=_training_png(training_log, training_figure),
        previews=[_read_png(Path(p)) for p in previews],
    )
    text = render(inputs)
    try:
        write_text_atomic(out, text)
    except OSError as error:
        raise UserError(f"cannot write {out} ({error.strerror or error})") from None
    return Path(out)


def load_metrics(metrics_dir: str | Path) -> dict[str, dict[str, Any]]:
    documents = {}
    for name in METRIC_FILES:
        path = Path(metrics_dir) / name
        try:
            documents[name.removesuffix(".json")] = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"{path}: not readable metrics ({error})") from None
    return documents


def _read_config(path: str | Path | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text()
    except OSError as error:
        raise UserError(f"cannot read config {path}: {error.strerror or error}") from None


def _training_png(log_path: str | Path | None, keep: str | Path | None) -> bytes | None:
    if log_path is None:
        return None
    columns = figures.read_training_log(log_path)
    if columns is None:
        log.warning("%s: no readable training log; the training section is left out", log_path)
        return None
    figure = figures.training_figure(columns)
    if keep is not None:
        figures.write_png(figure, keep)
    return figures.png_bytes(figure)


def _read_png(path: Path) -> tuple[str, bytes]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    if not data.startswith(PNG_SIGNATURE):
        raise UserError(f"{path}: not a PNG file")
    return path.name, data


# --- rendering --------------------------------------------------------------------------------


def render(inputs: ReportInputs) -> str:
    """The whole HTML document."""
    summary = inputs.metrics["summary"]
    sections: list[tuple[str, str, str]] = [("summary", "Summary", _summary_section(inputs))]
    for family in summary["families"]:
        sections.append((f"family-{family}", f"Family: {family}", _family_section(inputs, family)))
    sections.append(("noise", "Noise", _noise_section(inputs)))
    sections.append(("sweeps", "Frequency and voxel size", _sweeps_section(inputs)))
    if inputs.training_png is not None:
        sections.append(
            (
                "training",
                "Training",
                _figure(inputs.training_png, "DIME training", _TRAINING_CAPTION),
            )
        )
    if inputs.previews:
        sections.append(("phantoms", "Phantoms", _previews_section(inputs.previews)))
    sections.append(("definitions", "Metric definitions", _definitions_section()))
    sections.append(("config", "Configuration", _config_section(inputs.config_text)))
    sections.append(("provenance", "Provenance", _provenance_section(inputs)))
    nav = " · ".join(f'<a href="#{sid}">{_e(title)}</a>' for sid, title, _ in sections)
    body = "\n".join(
        f'<section id="{sid}">\n<h2>{_e(title)}</h2>\n{content}\n</section>'
        for sid, title, content in sections
    )
    return _PAGE.format(
        style=_STYLE,
        nav=nav,
        body=body,
        methods=_e(", ".join(method_title(m) for m in summary["methods"])),
    )


_TRAINING_CAPTION = (
    "Per-epoch means of the logged training and validation metrics (Lightning CSV log)."
)


def _summary_section(inputs: ReportInputs) -> str:
    summary = inputs.metrics["summary"]
    parts = [
        "<p>All noise levels pooled per family; the best value of each column is in bold. "
        "Bias is estimate − truth. Definitions are at the end; per-level numbers in each "
        "family's section and under Noise.</p>"
    ]
    for family in summary["families"]:
        table = summary["table"][family]
        parts.append(f"<h3>{_e(family)}</h3>")
        parts.append(_findings(table))
        parts.append(_headline_table(table, summary["methods"], reference=True))
    return "\n".join(parts)


def _findings(table: dict[str, Any]) -> str:
    """One line at a glance: the most accurate method and each method's bias."""
    mape = {m: g["headline"].get("mape_pct") for m, g in table.items()}
    ranked = sorted((v, m) for m, v in mape.items() if _finite(v))
    if not ranked:
        return "<p>No method produced estimates for this family.</p>"
    best = ranked[0][1]
    biases = ", ".join(
        f"{method_title(m)} {_fmt(g['headline'].get('bias_pct'), '+.1f')} %"
        for m, g in table.items()
    )
    return (
        f'<p class="finding">Lowest MAPE: <b>{_e(method_title(best))}</b> '
        f"({_fmt(mape[best], '.1f')} %). Bias: {_e(biases)}.</p>"
    )


def _headline_table(table: dict[str, Any], methods: Sequence[str], reference: bool) -> str:
    headlines = {m: table[m]["headline"] for m in methods if m in table}
    best = {key: _best(key, better, headlines) for key, _, _, better in COLUMNS}
    header = "".join(f"<th>{_e(title)}</th>" for _, title, _, _ in COLUMNS)
    rows = []
    for method, h in headlines.items():
        cells = "".join(
            _cell(_column_value(h, key, spec), method in best[key]) for key, _, spec, _ in COLUMNS
        )
        rows.append(f"<tr><th>{_e(method_title(method))}</th>{cells}</tr>")
    if reference and headlines:
        first = next(iter(headlines.values()))
        refs = {
            "cv_pct": first.get("truth_cv_pct"),
            "edge_width_mm": first.get("truth_edge_width_mm"),
        }
        cells = "".join(
            _cell(_fmt(refs[key], spec) if key in refs else "", False)
            for key, _, spec, _ in COLUMNS
        )
        rows.append(f'<tr class="ref"><th>ground truth</th>{cells}</tr>')
    return f'<table class="metrics"><tr><th>method</th>{header}</tr>{"".join(rows)}</table>'


def _column_value(h: dict[str, Any], key: str, spec: str) -> str:
    if key == "ba_limits":
        low, high = h.get("ba_lower_kpa"), h.get("ba_upper_kpa")
        return f"[{_fmt(low, '+.2f')}, {_fmt(high, '+.2f')}]" if _finite(low) else "–"
    return _fmt(h.get(key), spec)


def _best(key: str, better: str | None, headlines: dict[str, dict[str, Any]]) -> set[str]:
    """Methods with the best value of a column (ties all count); none for a single method."""
    values = {m: h.get(key) for m, h in headlines.items() if _finite(h.get(key))}
    if better is None or len(values) < 2:
        return set()
    score: Callable[[float], float] = {
        "high": lambda v: -v,
        "low": lambda v: v,
        "zero": abs,
    }[better]
    top = min(score(v) for v in values.values())
    return {m for m, v in values.items() if score(v) == top}


def _family_section(inputs: ReportInputs, family: str) -> str:
    groups = inputs.metrics["groups"]["table"][family]
    methods = inputs.metrics["groups"]["methods"]
    parts = []
    for label, table in groups.items():
        parts.append(f"<h3>{_e(snr_title(label))}</h3>")
        parts.append(_headline_table(table, methods, reference=False))
    for entry in _entries(inputs, "maps", family):
        parts.append(_figure_entry(inputs, entry, _CAPTIONS["maps"]))
    for kind in ("scatter", "bland_altman"):
        for entry in _entries(inputs, kind, family):
            parts.append(_figure_entry(inputs, entry, _CAPTIONS[kind]))
    summary = inputs.metrics["summary"]["table"][family]
    parts.append("<h3>Fibrosis staging (liver ROI, all noise levels)</h3>")
    parts.append(_staging_tables(summary, methods))
    parts.append("<h3>ROI means</h3>")
    parts.append(_roi_table(inputs, family, methods))
    edges = _edge_table(inputs, family, methods)
    if edges:
        parts.append("<h3>Edge widths</h3>")
        parts.append(edges)
    return "\n".join(parts)


def _staging_tables(summary: dict[str, Any], methods: Sequence[str]) -> str:
    blocks = []
    for method in methods:
        staging = summary[method]["staging"]
        header = "".join(f"<th>{_e(s)}</th>" for s in STAGES)
        rows = "".join(
            f"<tr><th>{_e(STAGES[i])}</th>"
            + "".join(f"<td>{count}</td>" for count in row)
            + "</tr>"
            for i, row in enumerate(staging["matrix"])
        )
        stats = (
            f"n = {staging['n']}, exact {_fmt(_pct(staging['exact']), '.0f')} %, within one "
            f"class {_fmt(_pct(staging['within_one']), '.0f')} %, κ = "
            f"{_fmt(staging['kappa'], '.2f')}"
        )
        blocks.append(
            f'<div class="confusion"><p><b>{_e(method_title(method))}</b>: {_e(stats)}</p>'
            f'<table class="metrics"><tr><th>truth ↓ / estimate →</th>{header}</tr>{rows}'
            "</table></div>"
        )
    legend = "; ".join(f"{s}: {r}" for s, r in zip(STAGES, STAGE_READINGS, strict=True))
    return f'<div class="row">{"".join(blocks)}</div><p class="note">{_e(legend)}.</p>'


def _roi_table(inputs: ReportInputs, family: str, methods: Sequence[str]) -> str:
    samples = [s for s in inputs.metrics["samples"]["samples"] if s["family"] == family]
    header = "".join(f"<th>{_e(method_title(m))} kPa</th>" for m in methods)
    rows = []
    for sample in samples:
        first = sample["methods"][methods[0]]["regions"] if methods else []
        for i, region in enumerate(first):
            values = "".join(
                f"<td>{_fmt(_region(sample, m, i).get('estimate_kpa'), '.2f')}</td>"
                for m in methods
            )
            rows.append(
                f"<tr><td>{sample['seed']}</td><td>{_e(snr_title(sample['snr_label']))}</td>"
                f"<td>{_e(str(region['name']))}</td><td>{_fmt(region['truth_kpa'], '.2f')}</td>"
                f"{values}</tr>"
            )
    shown = rows[:MAX_ROI_ROWS]
    more = (
        f'<p class="note">{len(rows) - len(shown)} more rows in samples.json.</p>'
        if len(rows) > len(shown)
        else ""
    )
    return (
        '<table class="metrics"><tr><th>seed</th><th>noise</th><th>region</th>'
        f"<th>truth kPa</th>{header}</tr>{''.join(shown)}</table>{more}"
    )


def _region(sample: dict[str, Any], method: str, i: int) -> dict[str, Any]:
    regions = sample["methods"][method]["regions"]
    return regions[i] if i < len(regions) else {}


def _edge_table(inputs: ReportInputs, family: str, methods: Sequence[str]) -> str:
    summary = inputs.metrics["summary"]["table"][family]
    if not any(summary[m]["edge_width_mm"]["n_edges"] for m in methods):
        return ""
    rows = "".join(
        f"<tr><th>{_e(method_title(m))}</th>"
        f"<td>{summary[m]['edge_width_mm']['n_edges']}</td>"
        f"<td>{summary[m]['edge_width_mm']['n_resolved']}</td>"
        f"<td>{_fmt(summary[m]['edge_width_mm']['mean'], '.2f')}</td>"
        f"<td>{_fmt(summary[m]['edge_width_mm']['median'], '.2f')}</td>"
        f"<td>{_fmt(summary[m]['edge_width_mm']['truth_mean'], '.2f')}</td></tr>"
        for m in methods
    )
    return (
        '<table class="metrics"><tr><th>method</th><th>edges</th><th>resolved</th>'
        "<th>mean mm</th><th>median mm</th><th>truth mm</th></tr>"
        f"{rows}</table>"
    )


def _noise_section(inputs: ReportInputs) -> str:
    sweeps = inputs.metrics["sweeps"]["sweeps"]["snr"]
    parts = []
    for family, sweep in sweeps.items():
        parts.append(f"<h3>{_e(family)}</h3>")
        entries = _entries(inputs, "noise", family)
        if not entries:
            parts.append('<p class="note">One noise level only: no noise curve.</p>')
        for entry in entries:
            parts.append(_figure_entry(inputs, entry, _CAPTIONS["noise"]))
        parts.append(_sweep_table(sweep, [snr_title(level["label"]) for level in sweep["levels"]]))
    return "\n".join(parts)


def _sweeps_section(inputs: ReportInputs) -> str:
    sweeps = inputs.metrics["sweeps"]["sweeps"]
    parts = []
    for variable, name in SWEEP_TITLES.items():
        for family, sweep in sweeps[variable].items():
            parts.append(f"<h3>{_e(family)}: {_e(name)}</h3>")
            entries = [
                e for e in _entries(inputs, "sweeps", family) if e.get("variable") == variable
            ]
            if not entries:
                only = sweep["levels"][0]["label"] if sweep["levels"] else "–"
                parts.append(f'<p class="note">A single level in this study ({_e(only)}).</p>')
                continue
            for entry in entries:
                parts.append(_figure_entry(inputs, entry, _CAPTIONS["sweeps"]))
            parts.append(_sweep_table(sweep, [level["label"] for level in sweep["levels"]]))
    return "\n".join(parts)


def _sweep_table(sweep: dict[str, Any], levels: Sequence[str]) -> str:
    """MAPE and bias per level (columns) and method (rows)."""
    header = "".join(f"<th>{_e(level)}</th>" for level in levels)
    rows = "".join(
        f"<tr><th>{_e(method_title(method))}</th>"
        + "".join(
            f"<td>{_fmt(h.get('mape_pct'), '.1f')} % / {_fmt(h.get('bias_pct'), '+.1f')} %</td>"
            for h in values
        )
        + "</tr>"
        for method, values in sweep["methods"].items()
    )
    return f'<table class="metrics"><tr><th>MAPE / bias</th>{header}</tr>{rows}</table>'


def _previews_section(previews: Iterable[tuple[str, bytes]]) -> str:
    items = "".join(
        _figure(data, name, f"Phantom preview {name}.", css="preview") for name, data in previews
    )
    return f'<div class="row">{items}</div>'


def _definitions_section() -> str:
    items = "".join(f"<dt>{_e(term)}</dt><dd>{_e(text)}</dd>" for term, text in DEFINITIONS)
    stages = "".join(
        f"<tr><th>{_e(s)}</th><td>{_e(r)}</td></tr>"
        for s, r in zip(STAGES, STAGE_READINGS, strict=True)
    )
    return (
        f"<dl>{items}</dl><h3>Fibrosis classes</h3>"
        "<p>Clinical MRE cut-offs at 60 Hz; &lt; 2.5 kPa (normal) and 2.5–2.9 kPa (normal or "
        "inflammation) are merged into F0. Intervals are [lower, upper).</p>"
        f'<table class="metrics">{stages}</table>'
    )


def _config_section(text: str | None) -> str:
    if text is None:
        return '<p class="note">No configuration file was given to the report.</p>'
    return f"<pre>{_e(text)}</pre>"


def _provenance_section(inputs: ReportInputs) -> str:
    prov = inputs.metrics["provenance"]
    truth = prov["truth"]
    rows = [
        ("report created (UTC)", datetime.now(UTC).isoformat(timespec="seconds")),
        ("metrics created (UTC)", prov.get("created_utc")),
        ("config hash", prov.get("config_hash")),
        ("config hash shared by all inputs", prov.get("config_hash_consistent")),
        ("test set", f"{truth['path']} (split {truth.get('split')}, {truth['n_samples']} rows)"),
        ("families", ", ".join(truth.get("families") or [])),
        ("noise levels", ", ".join(snr_title(s) for s in prov.get("snr_levels", []))),
        ("source stores", len(truth.get("sources") or [])),
        ("evaluation parameters", _compact(prov.get("parameters"))),
        ("versions (evaluation)", _compact(prov.get("versions"))),
        ("versions (report)", _compact(versions())),
        ("versions (test set)", _compact(truth.get("versions"))),
    ]
    for method, info in prov.get("estimates", {}).items():
        rows.append(
            (
                f"{method_title(method)} estimates",
                f"{info['path']} from {info.get('source')}, config hash "
                f"{info.get('config_hash')}, {_fmt(info.get('seconds_total'), '.1f')} s; "
                f"parameters {_compact(info.get('parameters'))}",
            )
        )
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(str(v))}</td></tr>" for k, v in rows)
    sources = "".join(f"<li>{_e(str(s))}</li>" for s in truth.get("sources") or [])
    listing = f"<details><summary>source stores</summary><ul>{sources}</ul></details>"
    return f'<table class="prov">{body}</table>{listing if sources else ""}'


# --- pieces -----------------------------------------------------------------------------------

_CAPTIONS = {
    "maps": "|G*| maps in kPa: ground truth, each method, and each method minus the truth. One "
    "colour scale per row (stiffness) and one symmetric scale per row (error); grey: no "
    "estimate or outside the tissue.",
    "scatter": "Estimated vs true |G*|: pixels (dots, subsampled) and ROI means (ringed), "
    "coloured by noise level; dashed: identity. r and MAPE over all evaluated pixels.",
    "bland_altman": "Bland–Altman of ROI means: difference (estimate − truth) against their mean, "
    "with the mean difference and the 95 % limits of agreement (± 1.96 SD).",
    "noise": "Metrics against the noise level (amplitude SNR; noise-free on the right), pooled "
    "over the family's samples at each level.",
    "sweeps": "Metrics against the swept acquisition parameter, pooled over the samples in each "
    "level (equal-count bins when the values vary continuously).",
}


def _entries(inputs: ReportInputs, kind: str, family: str) -> list[dict[str, Any]]:
    return [e for e in inputs.figures if e.get("kind") == kind and e.get("family") == family]


def _figure_entry(inputs: ReportInputs, entry: dict[str, Any], caption: str) -> str:
    path = inputs.figures_dir / entry["path"]
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"{path}: figure listed in the manifest is missing ({error})") from None
    return _figure(data, entry.get("title", path.stem), caption)


def _figure(data: bytes, alt: str, caption: str, css: str = "") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<figure class="{css}"><img src="data:image/png;base64,{encoded}" alt="{_e(alt)}">'
        f"<figcaption><b>{_e(alt)}.</b> {_e(caption)}</figcaption></figure>"
    )


def _cell(text: str, bold: bool) -> str:
    return f"<td><b>{_e(text)}</b></td>" if bold else f"<td>{_e(text)}</td>"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if _finite(value) else "–"


def _pct(value: Any) -> float | None:
    return 100.0 * value if _finite(value) else None


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False) if value is not None else "–"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
  max-width: 1400px; padding: 0 1.5em 3em; color: #222; line-height: 1.4; }
header { border-bottom: 2px solid #1b9e77; margin-bottom: 1em; }
nav { position: sticky; top: 0; background: #fff; padding: .5em 0; border-bottom: 1px solid #ddd;
  font-size: .9em; z-index: 1; }
nav a, a { color: #1b6e9e; text-decoration: none; }
h2 { border-bottom: 1px solid #ccc; padding-top: .8em; }
table.metrics, table.prov { border-collapse: collapse; margin: .6em 0 1em; font-size: .88em; }
table.metrics th, table.metrics td, table.prov th, table.prov td { border: 1px solid #ddd;
  padding: .25em .55em; text-align: right; }
table.metrics tr > th:first-child, table.prov th { text-align: left; background: #f6f6f6; }
table.metrics tr:first-child th { background: #eef5f2; }
table.prov td { text-align: left; font-family: ui-monospace, monospace; font-size: .9em;
  word-break: break-word; }
tr.ref td, tr.ref th { color: #666; font-style: italic; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figure.preview { display: inline-block; max-width: 320px; margin-right: 1em; }
figcaption { font-size: .85em; color: #444; max-width: 1000px; }
.row { display: flex; flex-wrap: wrap; gap: 1.5em; }
.note { color: #666; font-size: .9em; }
.finding { background: #f3faf7; border-left: 4px solid #1b9e77; padding: .4em .8em; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: .85em; }
dt { font-weight: 600; margin-top: .5em; }
dd { margin-left: 1.5em; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dime-pipeline results</title>
<style>{style}</style>
</head>
<body>
<header><h1>dime-pipeline results</h1>
<p>How well each inversion ({methods}) recovers the ground-truth stiffness |G*| of the simulated
test set, where it fails, and how noise changes it.</p></header>
<nav>{nav}</nav>
{body}
</body>
</html>
"""
