"""The report's summary and per-family sections: headline tables, findings, maps, scatter,
Bland–Altman, staging, ROIs and edges (``report.build_context`` orders them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dime_pipeline.evaluation import figures
from dime_pipeline.evaluation.evaluate import (
    method_title,
    snr_title,
)
from dime_pipeline.evaluation.report_blocks import (
    _CAPTIONS,
    _count,
    _entries,
    _figure_entry,
    _finite,
    _fmt,
    _h3,
    _p,
    _pct,
    _row,
    _table,
)
from dime_pipeline.evaluation.staging import STAGE_READINGS, STAGES

if TYPE_CHECKING:
    from dime_pipeline.evaluation.report import ReportInputs

MAX_ROI_ROWS = 40
# Fibrosis staging is defined for the liver only (clinical liver MRE cut-offs).
STAGED_FAMILIES = ("liver",)

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
