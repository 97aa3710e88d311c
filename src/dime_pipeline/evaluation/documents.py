"""The JSON documents of ``results/metrics`` (:data:`METRIC_FILES`): what goes into each, and
writing them as strict JSON.

``samples.json``: every method's metrics per row; ``groups.json``: pooled per family and noise
level (``table``) and per wave pattern and noise level (``by_pattern``); ``summary.json``: pooled
per family (``table``) and per wave pattern (``by_pattern``) over all noise levels, and the
coverage of DIME's confidence bands (``coverage``, :mod:`~dime_pipeline.evaluation.confidence`);
``sweeps.json``: headline metrics along the sweeps of the study (noise, frequency, voxel size);
``provenance.json``: :func:`dime_pipeline.evaluation.labels.provenance`. Every document lists
the ``methods``, ``families`` and wave ``patterns`` of the evaluation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dime_pipeline.errors import UserError
from dime_pipeline.evaluation.confidence import coverage_document
from dime_pipeline.evaluation.labels import provenance, snr_label
from dime_pipeline.evaluation.scoring import Row, group_metrics
from dime_pipeline.store import jsonable
from dime_pipeline.textio import write_text_atomic

if TYPE_CHECKING:
    from dime_pipeline.evaluation.evaluate import Evaluation

METRICS_SCHEMA_VERSION = 1
METRIC_FILES = ("summary.json", "groups.json", "samples.json", "sweeps.json", "provenance.json")


def build_documents(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """The JSON documents of ``results/metrics``, by file name."""
    header = {
        "schema_version": METRICS_SCHEMA_VERSION,
        "methods": evaluation.methods,
        "families": evaluation.families,
        "patterns": evaluation.patterns,
    }
    summary = {
        "table": _summary(evaluation),
        "by_pattern": _pattern_summary(evaluation),
        "coverage": coverage_document(evaluation),
    }
    groups = {"table": _groups(evaluation), "by_pattern": _pattern_groups(evaluation)}
    return {
        "summary.json": {**header, "kind": "metrics-summary", **summary},
        "groups.json": {**header, "kind": "metrics-groups", **groups},
        "samples.json": {**header, "kind": "metrics-samples", "samples": _samples(evaluation)},
        "sweeps.json": {**header, "kind": "metrics-sweeps", **_sweeps(evaluation)},
        "provenance.json": {**header, "kind": "metrics-provenance", **provenance(evaluation)},
    }


def _pooled(evaluation: Evaluation, method: str, indices: Sequence[int]) -> dict[str, Any]:
    return group_metrics(evaluation.results[method][i] for i in indices)


def _summary(evaluation: Evaluation) -> dict[str, Any]:
    """family → method → metrics pooled over every noise level."""
    return {
        family: {
            method: _pooled(evaluation, method, evaluation.select(family))
            for method in evaluation.methods
        }
        for family in evaluation.families
    }


def _groups(evaluation: Evaluation) -> dict[str, Any]:
    """family → SNR label → method → pooled metrics."""
    table: dict[str, Any] = {}
    for family in evaluation.families:
        table[family] = {}
        for label in evaluation.snr_labels(family):
            indices = evaluation.select(family, label)
            table[family][label] = {
                method: _pooled(evaluation, method, indices) for method in evaluation.methods
            }
    return table


def _pattern_summary(evaluation: Evaluation) -> dict[str, Any]:
    """wave pattern → method → metrics pooled over every family and noise level."""
    return {
        pattern: {
            method: _pooled(evaluation, method, evaluation.select(pattern=pattern))
            for method in evaluation.methods
        }
        for pattern in evaluation.patterns
    }


def _pattern_groups(evaluation: Evaluation) -> dict[str, Any]:
    """wave pattern → SNR label → method → metrics pooled over every family."""
    table: dict[str, Any] = {}
    for pattern in evaluation.patterns:
        table[pattern] = {}
        for label in evaluation.snr_labels(pattern=pattern):
            indices = evaluation.select(snr=label, pattern=pattern)
            table[pattern][label] = {
                method: _pooled(evaluation, method, indices) for method in evaluation.methods
            }
    return table


def _samples(evaluation: Evaluation) -> list[dict[str, Any]]:
    samples = []
    for row in evaluation.rows:
        per_method = {}
        for method in evaluation.methods:
            result = evaluation.results[method][row.index]
            per_method[method] = {
                "pixel": result.pixel,
                "regions": result.regions,
                "edges": result.edges,
                "liver_roi": result.liver,
            }
        samples.append(
            {
                "row": row.index,
                "family": row.family,
                "wave_pattern": row.wave_pattern,
                "seed": row.seed,
                "snr": row.snr,
                "snr_label": row.snr_label,
                "frequency_hz": row.frequency_hz,
                "voxel_size_mm": list(row.voxel_size_mm),
                "methods": per_method,
            }
        )
    return samples


def _sweeps(evaluation: Evaluation) -> dict[str, Any]:
    """Headline metrics per level of each swept variable, per family and method."""
    levels = evaluation.parameters.sweep_levels
    variables: dict[str, Callable[[list[Row]], list[tuple[dict[str, Any], list[int]]]]] = {
        "snr": _snr_levels,
        "frequency_hz": lambda rows: _value_levels(rows, lambda r: r.frequency_hz, levels, 1),
        "voxel_size_mm": lambda rows: _value_levels(
            rows, lambda r: float(np.mean(r.voxel_size_mm)), levels, 4
        ),
    }
    sweeps: dict[str, Any] = {}
    for variable, split in variables.items():
        sweeps[variable] = {}
        for family in evaluation.families:
            rows = [row for row in evaluation.rows if row.family == family]
            parts = split(rows)
            sweeps[variable][family] = {
                "levels": [level for level, _ in parts],
                "methods": {
                    method: [_pooled(evaluation, method, ids)["headline"] for _, ids in parts]
                    for method in evaluation.methods
                },
            }
    return {"sweeps": sweeps}


def _snr_levels(rows: list[Row]) -> list[tuple[dict[str, Any], list[int]]]:
    snrs = sorted({row.snr for row in rows})
    return [
        (
            {"label": snr_label(s), "value": None if math.isinf(s) else s},
            [row.index for row in rows if row.snr == s],
        )
        for s in snrs
    ]


def _value_levels(
    rows: list[Row], value: Callable[[Row], float], max_levels: int, digits: int
) -> list[tuple[dict[str, Any], list[int]]]:
    """Distinct values (rounded to ``digits``) as levels when there are at most ``max_levels``
    of them, else equal-count bins (level: range and mean value)."""
    values = np.array([round(value(row), digits) for row in rows])
    distinct = np.unique(values)
    if len(distinct) <= max_levels:
        groups = [values == v for v in distinct]
    else:
        order = np.argsort(values, kind="stable")
        groups = []
        for chunk in np.array_split(order, max_levels):
            member = np.zeros(len(rows), bool)
            member[chunk] = True
            groups.append(member)
    levels = []
    for member in groups:
        chosen = values[member]
        levels.append(
            (
                {
                    "label": _range_label(chosen.min(), chosen.max(), digits),
                    "value": float(chosen.mean()),
                    "range": [float(chosen.min()), float(chosen.max())],
                },
                [row.index for row, keep in zip(rows, member, strict=True) if keep],
            )
        )
    return levels


def _range_label(low: float, high: float, digits: int) -> str:
    def text(value: float) -> str:
        return f"{round(value, digits):.6g}"

    return text(low) if low == high else f"{text(low)}–{text(high)}"


def write_metrics(evaluation: Evaluation, out_dir: str | Path) -> list[Path]:
    """Write every document to ``out_dir`` (each file atomically); return the paths."""
    out_dir = Path(out_dir)
    written = []
    for name in METRIC_FILES:
        path = out_dir / name
        try:
            write_text_atomic(path, dumps(evaluation.documents[name]))
        except OSError as error:
            raise UserError(f"cannot write {path} ({error.strerror or error})") from None
        written.append(path)
    return written


def dumps(document: Any) -> str:
    """Strict JSON: NaN and ±inf become null (JSON has neither)."""
    return json.dumps(_finite(jsonable(document)), indent=1, ensure_ascii=False, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
