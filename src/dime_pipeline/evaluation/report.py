"""The results report: one self-contained HTML file (inline CSS, figures as base64 PNG, no
external resources) that opens from disk.

Order: summary table per family × method (at a glance), one section per family (tables, maps,
scatter, Bland–Altman, staging for the liver family, ROIs, edges), wave patterns (tables per
pattern × method, all families pooled), noise, sweeps, training, phantoms, metric definitions,
config and provenance. Built from ``results/metrics/*.json`` and the figures that
``dime-pipeline evaluate`` wrote (``manifest.json``).

The page is a Jinja2 template (``templates/report.html.j2``, its blocks ``_blocks.html.j2`` and
style ``report.css``, autoescaped) filled with the plain data of :func:`build_context`: restyle
it by passing ``template_dir`` (or setting ``$DIME_REPORT_TEMPLATES``) to a folder holding files
of the same names, which replace the shipped ones.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from dime_pipeline.errors import UserError
from dime_pipeline.evaluation import figures
from dime_pipeline.evaluation.evaluate import (
    METRIC_FILES,
    method_title,
    pattern_title,
    snr_title,
    versions,
)
from dime_pipeline.evaluation.figure_set import SWEEP_TITLES, read_manifest
from dime_pipeline.evaluation.staging import STAGE_READINGS, STAGES
from dime_pipeline.textio import write_text_atomic

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_ROI_ROWS = 40
TEMPLATE = "report.html.j2"
TEMPLATES_ENV = "DIME_REPORT_TEMPLATES"
# A family whose test split holds fewer phantoms than this gets a banner: its numbers describe
# those few phantoms, not the method.
MIN_TEST_PHANTOMS = 5
# Fibrosis staging is defined for the liver only (clinical liver MRE cut-offs).
STAGED_FAMILIES = ("liver",)
# What each wave pattern of the phantoms (config.WAVE_PATTERNS) means, for the report's readers.
PATTERN_READINGS = {
    "converging": "one driver around the whole outline: waves converge on the centre",
    "multi_driver": "several drivers: their waves interfere",
    "reflecting": "one driver and a traction-free (reflecting) outer boundary, in whole or in "
    "part: standing waves",
    "absorbing": "one driver and an absorbing rest of the boundary: waves travel out, as in an "
    "unbounded medium",
}
# The package's pretrained DIME model and its training log live here (the shipped model).
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "dime" / "pretrained"

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
        "95 % limits mean ± 1.96 SD (sample SD), kPa; abscissa (t + e) / 2. With fewer than "
        f"{figures.BLAND_ALTMAN_MIN_POINTS} pairs no plot is drawn and no limits are given.",
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
        "liver family only: fibrosis class (below) of the liver ROI mean of estimate vs truth; "
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
    training_log: Path | None = None  # where the curves of training_png come from


def build_report(
    metrics_dir: str | Path,
    figures_dir: str | Path,
    out: str | Path,
    config: str | Path | None = None,
    training_log: str | Path | None = None,
    previews: Sequence[str | Path] = (),
    training_figure: str | Path | None = None,
    template_dir: str | Path | None = None,
) -> Path:
    """Write the HTML report to ``out`` (atomically); ``training_figure`` also keeps the training
    curves as a PNG file (for ``snakemake --report``); ``template_dir`` (default
    ``$DIME_REPORT_TEMPLATES``) holds templates that replace the shipped ones of the same name."""
    metrics = load_metrics(metrics_dir)
    manifest = read_manifest(figures_dir)
    config_text = _read_config(config)
    training_png = _training_png(training_log, training_figure)
    inputs = ReportInputs(
        metrics=metrics,
        figures=manifest,
        figures_dir=Path(figures_dir),
        config_text=config_text,
        training_png=training_png,
        previews=[_read_png(Path(p)) for p in previews],
        training_log=Path(training_log) if training_png is not None and training_log else None,
    )
    text = render(inputs, template_dir)
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


def render(inputs: ReportInputs, template_dir: str | Path | None = None) -> str:
    """The whole HTML document: :data:`TEMPLATE` filled with :func:`build_context`."""
    try:
        template = environment(template_dir).get_template(TEMPLATE)
        return template.render(build_context(inputs))
    except jinja2.TemplateError as error:
        where = f" ({error.filename}:{error.lineno})" if hasattr(error, "lineno") else ""
        raise UserError(f"report template{where}: {error.message or error}") from None


def environment(template_dir: str | Path | None = None) -> jinja2.Environment:
    """Jinja2 with autoescape on: ``template_dir`` (else ``$DIME_REPORT_TEMPLATES``) first, then
    the templates shipped in this package."""
    template_dir = template_dir or os.environ.get(TEMPLATES_ENV) or None
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise UserError(f"report templates: {template_dir} is not a folder")
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders.append(jinja2.PackageLoader("dime_pipeline.evaluation", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def build_context(inputs: ReportInputs) -> dict[str, Any]:
    """The template's data, all plain (strings, numbers already formatted, lists, dicts):
    ``title``, ``methods``, ``banners`` ({title, text}) and ``sections`` ({id, title, blocks});
    a block is a dict whose ``type`` names its macro in ``_blocks.html.j2``."""
    summary = inputs.metrics["summary"]
    sections = [_section("summary", "Summary", _summary_blocks(inputs))]
    for family in summary["families"]:
        sections.append(
            _section(f"family-{family}", f"Family: {family}", _family_blocks(inputs, family))
        )
    if summary.get("by_pattern"):  # metrics written before wave patterns have none
        sections.append(_section("patterns", "Wave patterns", _pattern_blocks(inputs)))
    sections.append(_section("noise", "Noise", _noise_blocks(inputs)))
    sections.append(_section("sweeps", "Frequency and voxel size", _sweeps_blocks(inputs)))
    if inputs.training_png is not None:
        sections.append(_section("training", "Training", _training_blocks(inputs)))
    if inputs.previews:
        sections.append(_section("phantoms", "Phantoms", _previews_blocks(inputs.previews)))
    sections.append(_section("definitions", "Metric definitions", _definitions_blocks(inputs)))
    sections.append(_section("config", "Configuration", _config_blocks(inputs.config_text)))
    sections.append(_section("provenance", "Provenance", _provenance_blocks(inputs)))
    return {
        "title": "dime-pipeline results",
        "methods": [method_title(m) for m in summary["methods"]],
        "banners": _banners(inputs),
        "sections": sections,
    }


_TRAINING_CAPTION = (
    "Per-epoch means of the logged training and validation metrics (Lightning CSV log)."
)


# --- blocks (the template's vocabulary) -------------------------------------------------------


def _section(sid: str, title: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": sid, "title": title, "blocks": blocks}


def _h3(text: str) -> dict[str, Any]:
    return {"type": "h3", "text": text}


def _p(text: str, css: str = "") -> dict[str, Any]:
    return {"type": "p", "text": text, "css": css}


def _table(
    rows: list[dict[str, Any]], header: Sequence[str] = (), css: str = "metrics"
) -> dict[str, Any]:
    return {"type": "table", "css": css, "header": list(header), "rows": rows}


def _row(head: str | None, cells: Sequence[str | dict[str, Any]], css: str = "") -> dict[str, Any]:
    """A table row: ``head`` (a header cell, or None) then data cells (text, or {text, bold})."""
    return {
        "head": head,
        "css": css,
        "cells": [c if isinstance(c, dict) else {"text": c, "bold": False} for c in cells],
    }


def _figure(data: bytes, alt: str, caption: str, css: str = "") -> dict[str, Any]:
    encoded = base64.b64encode(data).decode("ascii")
    return {"type": "figure", "data": encoded, "alt": alt, "caption": caption, "css": css}


# --- banners ----------------------------------------------------------------------------------


def small_test_splits(samples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Families whose test split holds fewer than :data:`MIN_TEST_PHANTOMS` phantoms (distinct
    seeds): {family, phantoms, rows, levels}, in the order the families first appear."""
    seeds: dict[str, set[Any]] = {}
    levels: dict[str, set[str]] = {}
    rows: dict[str, int] = {}
    for sample in samples:
        family = sample["family"]
        seeds.setdefault(family, set()).add(sample["seed"])
        levels.setdefault(family, set()).add(sample["snr_label"])
        rows[family] = rows.get(family, 0) + 1
    return [
        {
            "family": family,
            "phantoms": len(seeds[family]),
            "rows": rows[family],
            "levels": len(levels[family]),
        }
        for family in rows
        if len(seeds[family]) < MIN_TEST_PHANTOMS
    ]


def _banners(inputs: ReportInputs) -> list[dict[str, str]]:
    small = small_test_splits(inputs.metrics["samples"]["samples"])
    if not small:
        return []
    listing = "; ".join(
        f"{s['family']}: {_count(s['phantoms'], 'phantom')} ({_count(s['rows'], 'sample')} "
        f"at {_count(s['levels'], 'noise level')})"
        for s in small
    )
    return [
        {
            "title": "Test split too small to mean much.",
            "text": f"Fewer than {MIN_TEST_PHANTOMS} phantoms per family in the test split — "
            f"{listing}. Every number below describes these few phantoms, not the methods; "
            "differences between methods may be chance. Raise samples (or "
            "datasets.fractions.test) in the config for conclusions.",
        }
    ]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# --- sections ---------------------------------------------------------------------------------


def _summary_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    summary = inputs.metrics["summary"]
    blocks = [
        _p(
            "All noise levels pooled per family; the best value of each column is in bold. "
            "Bias is estimate − truth. Definitions are at the end; per-level numbers in each "
            "family's section and under Noise; per wave pattern under Wave patterns."
        )
    ]
    for family in summary["families"]:
        table = summary["table"][family]
        blocks.append(_h3(family))
        blocks.append(_findings(table))
        blocks.append(_headline_table(table, summary["methods"], family, reference=True))
    return blocks


def _findings(table: dict[str, Any], group: str = "family") -> dict[str, Any]:
    """One line at a glance: the most accurate method and each method's bias."""
    mape = {m: g["headline"].get("mape_pct") for m, g in table.items()}
    ranked = sorted((v, m) for m, v in mape.items() if _finite(v))
    if not ranked:
        return _p(f"No method produced estimates for this {group}.")
    best = ranked[0][1]
    biases = ", ".join(
        f"{method_title(m)} {_fmt(g['headline'].get('bias_pct'), '+.1f')} %"
        for m, g in table.items()
    )
    return {
        "type": "finding",
        "best": method_title(best),
        "mape": _fmt(mape[best], ".1f"),
        "biases": biases,
    }


def _columns(family: str) -> list[tuple[str, str, str, str | None]]:
    """The summary columns shown for ``family``: stage agreement only where staging is defined
    (never for "", a group of several families)."""
    return [c for c in COLUMNS if c[0] != "stage_agreement_pct" or family in STAGED_FAMILIES]


def _headline_table(
    table: dict[str, Any], methods: Sequence[str], family: str, reference: bool
) -> dict[str, Any]:
    columns = _columns(family)
    groups = {m: table[m] for m in methods if m in table}
    headlines = {m: g["headline"] for m, g in groups.items()}
    best = {key: _best(key, better, headlines) for key, _, _, better in columns}
    rows = [
        _row(
            method_title(method),
            [
                {"text": _column_value(group, key, spec), "bold": method in best[key]}
                for key, _, spec, _ in columns
            ],
        )
        for method, group in groups.items()
    ]
    if reference and headlines:
        first = next(iter(headlines.values()))
        refs = {
            "cv_pct": first.get("truth_cv_pct"),
            "edge_width_mm": first.get("truth_edge_width_mm"),
        }
        cells = [_fmt(refs[key], spec) if key in refs else "" for key, _, spec, _ in columns]
        rows.append(_row("ground truth", cells, css="ref"))
    return _table(rows, ["method", *(title for _, title, _, _ in columns)])


def _column_value(group: dict[str, Any], key: str, spec: str) -> str:
    h = group["headline"]
    if key == "ba_limits":
        pairs = (group.get("roi") or {}).get("n")
        if isinstance(pairs, int) and pairs < figures.BLAND_ALTMAN_MIN_POINTS:
            return f"– ({_count(pairs, 'pair')})"
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


def _family_blocks(inputs: ReportInputs, family: str) -> list[dict[str, Any]]:
    groups = inputs.metrics["groups"]["table"][family]
    methods = inputs.metrics["groups"]["methods"]
    summary = inputs.metrics["summary"]["table"][family]
    blocks = []
    for label, table in groups.items():
        blocks.append(_h3(snr_title(label)))
        blocks.append(_headline_table(table, methods, family, reference=False))
    for entry in _entries(inputs, "maps", family):
        blocks.append(_figure_entry(inputs, entry, _CAPTIONS["maps"]))
    for entry in _entries(inputs, "scatter", family):
        blocks.append(_figure_entry(inputs, entry, _CAPTIONS["scatter"]))
    for entry in _entries(inputs, "bland_altman", family):
        blocks.append(_figure_entry(inputs, entry, _CAPTIONS["bland_altman"]))
        note = _bland_altman_note(summary, methods)
        if note:
            blocks.append(_p(note, "note"))
    if family in STAGED_FAMILIES:
        blocks.append(_h3("Fibrosis staging (liver ROI, all noise levels)"))
        blocks.append(_staging_blocks(summary, methods))
        blocks.append(_p(_stage_legend() + ".", "note"))
    blocks.append(_h3("ROI means"))
    blocks.extend(_roi_blocks(inputs, family, methods))
    edges = _edge_table(summary, methods)
    if edges:
        blocks.append(_h3("Edge widths"))
        blocks.append(edges)
    return blocks


def _pattern_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    """Per wave pattern (all families pooled): the headline table over all noise levels, then
    one per noise level when there are several."""
    summary = inputs.metrics["summary"]
    levels = inputs.metrics["groups"].get("by_pattern") or {}
    samples = inputs.metrics["samples"]["samples"]
    methods = summary["methods"]
    blocks = [
        _p(
            "All families pooled per wave pattern of the phantoms, over all noise levels (with "
            "the ground truth's CV and edge width) and per noise level; the best value of each "
            "column is in bold. Phantoms simulated before wave patterns were recorded count as "
            "absorbing, the liver as reflecting (its skin was traction-free)."
        )
    ]
    for pattern, table in summary["by_pattern"].items():
        title = pattern_title(pattern)
        blocks.append(_h3(title))
        blocks.append(_p(_pattern_note(pattern, samples), "note"))
        blocks.append(_findings(table, "wave pattern"))
        blocks.append(_headline_table(table, methods, "", reference=True))
        by_level = levels.get(pattern) or {}
        if len(by_level) > 1:
            for label, level in by_level.items():
                blocks.append(_h3(f"{title}: {snr_title(label)}"))
                blocks.append(_headline_table(level, methods, "", reference=False))
    return blocks


def _pattern_note(pattern: str, samples: Sequence[dict[str, Any]]) -> str:
    """What the pattern is, and which phantoms of the test split have it."""
    rows = [s for s in samples if s.get("wave_pattern") == pattern]
    phantoms = {(s["family"], s["seed"]) for s in rows}
    families = ", ".join(sorted({family for family, _ in phantoms}))
    reading = PATTERN_READINGS.get(pattern, pattern_title(pattern))
    reading = f"{reading[0].upper()}{reading[1:]}."
    if not rows:  # samples.json written before wave patterns
        return reading
    return (
        f"{reading} {_count(len(phantoms), 'phantom')} ({families}), {_count(len(rows), 'sample')}."
    )


def _bland_altman_pairs(summary: dict[str, Any], methods: Sequence[str]) -> dict[str, int]:
    return {
        m: summary[m]["roi"]["n"] for m in methods if isinstance(summary[m]["roi"].get("n"), int)
    }


def _bland_altman_note(summary: dict[str, Any], methods: Sequence[str]) -> str:
    """Why a Bland–Altman panel shows a note: too few ROI pairs (see the figure)."""
    pairs = _bland_altman_pairs(summary, methods)
    few = {m: n for m, n in pairs.items() if n < figures.BLAND_ALTMAN_MIN_POINTS}
    if not few:
        return ""
    listing = ", ".join(f"{method_title(m)} {_count(n, 'pair')}" for m, n in few.items())
    return (
        f"Too few ROI pairs for a Bland–Altman plot ({listing}; fewer than "
        f"{figures.BLAND_ALTMAN_MIN_POINTS}): the panel says so instead of drawing limits of "
        "agreement from a handful of points."
    )


def _staging_blocks(summary: dict[str, Any], methods: Sequence[str]) -> dict[str, Any]:
    blocks = []
    for method in methods:
        staging = summary[method]["staging"]
        rows = [
            _row(STAGES[i], [str(count) for count in row])
            for i, row in enumerate(staging["matrix"])
        ]
        stats = (
            f"n = {staging['n']}, exact {_fmt(_pct(staging['exact']), '.0f')} %, within one "
            f"class {_fmt(_pct(staging['within_one']), '.0f')} %, κ = "
            f"{_fmt(staging['kappa'], '.2f')}"
        )
        blocks.append(
            {
                "type": "confusion",
                "method": method_title(method),
                "stats": stats,
                "table": _table(rows, ["truth ↓ / estimate →", *STAGES]),
            }
        )
    return {"type": "row", "blocks": blocks}


def _stage_legend() -> str:
    return "; ".join(f"{s}: {r}" for s, r in zip(STAGES, STAGE_READINGS, strict=True))


def _roi_blocks(inputs: ReportInputs, family: str, methods: Sequence[str]) -> list[dict[str, Any]]:
    samples = [s for s in inputs.metrics["samples"]["samples"] if s["family"] == family]
    rows = []
    for sample in samples:
        first = sample["methods"][methods[0]]["regions"] if methods else []
        for i, region in enumerate(first):
            values = [_fmt(_region(sample, m, i).get("estimate_kpa"), ".2f") for m in methods]
            rows.append(
                _row(
                    None,
                    [
                        str(sample["seed"]),
                        snr_title(sample["snr_label"]),
                        str(region["name"]),
                        _fmt(region["truth_kpa"], ".2f"),
                        *values,
                    ],
                )
            )
    shown = rows[:MAX_ROI_ROWS]
    header = ["seed", "noise", "region", "truth kPa", *(f"{method_title(m)} kPa" for m in methods)]
    blocks = [_table(shown, header)]
    if len(rows) > len(shown):
        blocks.append(_p(f"{len(rows) - len(shown)} more rows in samples.json.", "note"))
    return blocks


def _region(sample: dict[str, Any], method: str, i: int) -> dict[str, Any]:
    regions = sample["methods"][method]["regions"]
    return regions[i] if i < len(regions) else {}


def _edge_table(summary: dict[str, Any], methods: Sequence[str]) -> dict[str, Any] | None:
    if not any(summary[m]["edge_width_mm"]["n_edges"] for m in methods):
        return None
    rows = []
    for m in methods:
        edges = summary[m]["edge_width_mm"]
        rows.append(
            _row(
                method_title(m),
                [
                    str(edges["n_edges"]),
                    str(edges["n_resolved"]),
                    _fmt(edges["mean"], ".2f"),
                    _fmt(edges["median"], ".2f"),
                    _fmt(edges["truth_mean"], ".2f"),
                ],
            )
        )
    header = ["method", "edges", "resolved", "mean mm", "median mm", "truth mm"]
    return _table(rows, header)


def _noise_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    sweeps = inputs.metrics["sweeps"]["sweeps"]["snr"]
    blocks = []
    for family, sweep in sweeps.items():
        blocks.append(_h3(family))
        entries = _entries(inputs, "noise", family)
        if not entries:
            blocks.append(_p("One noise level only: no noise curve.", "note"))
        for entry in entries:
            blocks.append(_figure_entry(inputs, entry, _CAPTIONS["noise"]))
        blocks.append(_sweep_table(sweep, [snr_title(level["label"]) for level in sweep["levels"]]))
    return blocks


def _sweeps_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    sweeps = inputs.metrics["sweeps"]["sweeps"]
    blocks = []
    for variable, name in SWEEP_TITLES.items():
        for family, sweep in sweeps[variable].items():
            blocks.append(_h3(f"{family}: {name}"))
            entries = [
                e for e in _entries(inputs, "sweeps", family) if e.get("variable") == variable
            ]
            if not entries:
                only = sweep["levels"][0]["label"] if sweep["levels"] else "–"
                blocks.append(_p(f"A single level in this study ({only}).", "note"))
                continue
            for entry in entries:
                blocks.append(_figure_entry(inputs, entry, _CAPTIONS["sweeps"]))
            blocks.append(_sweep_table(sweep, [level["label"] for level in sweep["levels"]]))
    return blocks


def _sweep_table(sweep: dict[str, Any], levels: Sequence[str]) -> dict[str, Any]:
    """MAPE and bias per level (columns) and method (rows)."""
    rows = [
        _row(
            method_title(method),
            [
                f"{_fmt(h.get('mape_pct'), '.1f')} % / {_fmt(h.get('bias_pct'), '+.1f')} %"
                for h in values
            ],
        )
        for method, values in sweep["methods"].items()
    ]
    return _table(rows, ["MAPE / bias", *levels])


def training_model(
    log_path: str | Path | None, provenance: dict[str, Any]
) -> dict[str, str | None]:
    """Which DIME model the training curves belong to: ``kind`` "shipped" (the log ships with
    the package's pretrained model) or "trained" (any other log: a model trained in this
    study), the ``model`` the DIME estimates name (None if unrecorded) and a ``mismatch``
    sentence when that model is not the one behind the curves."""
    shipped_log = log_path is not None and _inside(Path(log_path), PRETRAINED_DIR)
    dime = (provenance.get("estimates") or {}).get("dime") or {}
    model = (dime.get("parameters") or {}).get("model")
    mismatch = None
    if model is not None and _inside(Path(model), PRETRAINED_DIR) != shipped_log:
        mismatch = (
            f"The DIME estimates of this report came from {model}, which is not the model "
            "these curves belong to."
        )
    return {"kind": "shipped" if shipped_log else "trained", "model": model, "mismatch": mismatch}


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _training_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    assert inputs.training_png is not None
    info = training_model(inputs.training_log, inputs.metrics["provenance"])
    if info["kind"] == "shipped":
        which = (
            "the shipped pretrained model (dime_pipeline/dime/pretrained), trained before this "
            "study; its log ships with it"
        )
    else:
        which = "a model trained in this study (dime-pipeline train on its train and val packs)"
    facts = [
        {"term": "model", "text": which, "code": False},
        {"term": "curves from", "text": str(inputs.training_log or "–"), "code": True},
    ]
    if info["model"] is not None:
        facts.append({"term": "DIME estimates used", "text": info["model"], "code": True})
    blocks: list[dict[str, Any]] = [{"type": "facts", "items": facts}]
    if info["mismatch"]:
        blocks.append(_p(info["mismatch"], "warning"))
    title = "DIME training (shipped model)" if info["kind"] == "shipped" else "DIME training"
    blocks.append(_figure(inputs.training_png, title, _TRAINING_CAPTION))
    return blocks


def _previews_blocks(previews: Sequence[tuple[str, bytes]]) -> list[dict[str, Any]]:
    items = [
        _figure(data, name, f"Phantom preview {name}.", css="preview") for name, data in previews
    ]
    return [{"type": "row", "blocks": items}]


def _definitions_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "dl", "items": [list(d) for d in DEFINITIONS]}]
    if not any(f in STAGED_FAMILIES for f in inputs.metrics["summary"]["families"]):
        return blocks
    return [
        *blocks,
        _h3("Fibrosis classes (liver family)"),
        _p(
            "Clinical MRE cut-offs at 60 Hz; < 2.5 kPa (normal) and 2.5–2.9 kPa (normal or "
            "inflammation) are merged into F0. Intervals are [lower, upper)."
        ),
        _table([_row(s, [r]) for s, r in zip(STAGES, STAGE_READINGS, strict=True)]),
    ]


def _config_blocks(text: str | None) -> list[dict[str, Any]]:
    if text is None:
        return [_p("No configuration file was given to the report.", "note")]
    return [{"type": "pre", "text": text}]


def _provenance_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    prov = inputs.metrics["provenance"]
    truth = prov["truth"]
    noise = list(dict.fromkeys(snr_title(str(s)) for s in prov.get("snr_levels", [])))
    rows = [
        ("report created (UTC)", datetime.now(UTC).isoformat(timespec="seconds")),
        ("metrics created (UTC)", prov.get("created_utc")),
        ("config hash", prov.get("config_hash")),
        ("config hash shared by all inputs", prov.get("config_hash_consistent")),
        ("test set", f"{truth['path']} (split {truth.get('split')}, {truth['n_samples']} rows)"),
        ("families", ", ".join(truth.get("families") or [])),
        ("noise levels", ", ".join(noise)),
        ("source stores", len(truth.get("sources") or [])),
        ("evaluation parameters", _compact(prov.get("parameters"))),
        ("versions (evaluation)", _compact(prov.get("versions"))),
        ("versions (report)", _compact(versions())),
        ("versions (test set)", _compact(truth.get("versions"))),
    ]
    if inputs.training_log is not None:
        rows.append(("training log", str(inputs.training_log)))
    for method, info in prov.get("estimates", {}).items():
        rows.append(
            (
                f"{method_title(method)} estimates",
                f"{info['path']} from {info.get('source')}, config hash "
                f"{info.get('config_hash')}, {_fmt(info.get('seconds_total'), '.1f')} s; "
                f"parameters {_compact(info.get('parameters'))}",
            )
        )
    blocks = [_table([_row(k, [str(v)]) for k, v in rows], css="prov")]
    sources = [str(s) for s in truth.get("sources") or []]
    if sources:
        blocks.append({"type": "details", "summary": "source stores", "items": sources})
    return blocks


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


def _figure_entry(inputs: ReportInputs, entry: dict[str, Any], caption: str) -> dict[str, Any]:
    path = inputs.figures_dir / entry["path"]
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"{path}: figure listed in the manifest is missing ({error})") from None
    return _figure(data, entry.get("title", path.stem), caption)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if _finite(value) else "–"


def _pct(value: Any) -> float | None:
    return 100.0 * value if _finite(value) else None


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False) if value is not None else "–"
