"""Evaluate a packed test set against any number of estimates stores (one per method).

Every row of the pack is one (phantom, noise level) pair. Each method is scored per row
(``samples.json``), pooled per family and noise level (``groups.json``), pooled per family over all
noise levels (``summary.json``), and along the sweeps of the study: noise (SNR), frequency and
voxel size (``sweeps.json``). ``provenance.json`` names the inputs, versions and parameters.
Metric definitions: :mod:`dime_pipeline.evaluation.metrics` and docs/evaluation.md, "Metrics".

Pooling: pixel-level metrics of a group use every evaluated pixel of its rows together (larger
samples weigh more); ROI-level metrics use the ROI mean of every region of every row; CV and edge
width are averaged over regions / edges; stages are counted over rows (one liver ROI each).
"""

from __future__ import annotations

import json
import logging
import math
import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from dime_pipeline import __version__
from dime_pipeline.datasets import Pack
from dime_pipeline.errors import UserError
from dime_pipeline.estimates import Estimates, read_estimates
from dime_pipeline.evaluation import metrics
from dime_pipeline.evaluation.staging import (
    STAGES,
    confusion_matrix,
    fibrosis_stage,
    stage_agreement,
)
from dime_pipeline.store import jsonable
from dime_pipeline.textio import write_text_atomic

log = logging.getLogger(__name__)

METRICS_SCHEMA_VERSION = 1
METHOD_ORDER = ("dime", "mmdi", "di")  # the report's column order; unknown methods follow
METRIC_FILES = ("summary.json", "groups.json", "samples.json", "sweeps.json", "provenance.json")
NOISE_FREE = "inf"
LIVER_REGION = "liver"


@dataclass(frozen=True)
class EvaluationParameters:
    """Knobs of the metrics (recorded in ``provenance.json``)."""

    erosion_px: int = 1  # ROI = region eroded this many pixels (CV, ROI means, staging)
    homogeneity_pct: float = 1.0  # a region is homogeneous if the truth's CV in its ROI is below
    min_region_pixels: int = 5  # smaller ROIs are left out
    edge_band_px: float = 6.0  # edge profiles span ± this many voxels
    min_edge_contrast: float = 0.2  # estimated step / true step below this: edge not resolved
    sweep_levels: int = 5  # continuous sweep variables (frequency) are cut into this many bins
    max_map_rows: int = 4  # samples shown per map figure
    scatter_points: int = 4000  # pixels drawn per method in a scatter plot


@dataclass(frozen=True)
class Row:
    """One row of the test pack."""

    index: int
    family: str
    seed: int
    snr: float  # inf when noise-free
    frequency_hz: float
    voxel_size_mm: tuple[float, ...]
    region_names: dict[int, str] = field(default_factory=dict)

    @property
    def snr_label(self) -> str:
        return snr_label(self.snr)


@dataclass
class RowResult:
    """One method on one row: evaluated pixels (kPa) kept for pooling, ROIs, edges, liver ROI."""

    truth: np.ndarray
    estimate: np.ndarray
    tissue_pixels: int
    pixel: dict[str, Any]
    regions: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    liver: dict[str, Any] | None


@dataclass
class Evaluation:
    """Everything evaluated in memory: rows, per-method row results, and the JSON documents."""

    truth_path: Path
    pack: Pack
    estimates: dict[str, Estimates]
    estimate_paths: dict[str, Path]
    rows: list[Row]
    results: dict[str, list[RowResult]]
    parameters: EvaluationParameters
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        return list(self.results)

    @property
    def families(self) -> list[str]:
        return sorted({row.family for row in self.rows})

    def snr_labels(self, family: str | None = None) -> list[str]:
        snrs = {row.snr for row in self.rows if family in (None, row.family)}
        return [snr_label(s) for s in sorted(snrs)]

    def select(self, family: str | None = None, snr: str | None = None) -> list[int]:
        """Indices of the rows of ``family`` (all if None) at noise level ``snr`` (a label)."""
        return [
            row.index
            for row in self.rows
            if family in (None, row.family) and snr in (None, row.snr_label)
        ]


def snr_label(snr: float) -> str:
    """'inf' for noise-free, else the SNR as ``%g`` (the workflow's ``snr-{label}`` wildcard)."""
    return NOISE_FREE if math.isinf(snr) else f"{snr:g}"


def snr_title(label: str) -> str:
    return "noise-free" if label == NOISE_FREE else f"SNR {label}"


def method_title(method: str) -> str:
    return method.upper()


def evaluate(
    truth_path: str | Path,
    estimate_paths: Sequence[str | Path],
    parameters: EvaluationParameters | None = None,
) -> Evaluation:
    """Score every estimates store against the pack at ``truth_path``; builds the documents."""
    parameters = parameters or EvaluationParameters()
    pack = Pack(truth_path)
    estimates, paths = _load_estimates(pack, estimate_paths)
    rows = _rows(pack)
    truth_kpa = np.abs(pack.column("modulus")).astype(float) / 1e3
    masks = pack.column("mask").astype(bool)
    labels = pack.column("labels")
    results: dict[str, list[RowResult]] = {}
    for method, store in estimates.items():
        estimate_kpa = np.abs(store.modulus).astype(float) / 1e3
        results[method] = [
            evaluate_row(truth_kpa[i], estimate_kpa[i], masks[i], labels[i], row, parameters)
            for i, row in enumerate(rows)
        ]
        log.info("%s: %d samples evaluated", method_title(method), len(rows))
    evaluation = Evaluation(
        truth_path=Path(truth_path),
        pack=pack,
        estimates=estimates,
        estimate_paths=paths,
        rows=rows,
        results=results,
        parameters=parameters,
    )
    evaluation.documents = build_documents(evaluation)
    return evaluation


def evaluate_row(
    truth: np.ndarray,
    estimate: np.ndarray,
    mask: np.ndarray,
    labels: np.ndarray,
    row: Row,
    parameters: EvaluationParameters,
) -> RowResult:
    """Every metric of one method on one sample (arrays in kPa)."""
    valid = metrics.evaluated_pixels(truth, estimate, mask)
    with np.errstate(invalid="ignore"):
        tissue = int((mask & np.isfinite(truth) & (truth > 0)).sum())
    regions = metrics.region_statistics(
        truth,
        estimate,
        mask,
        labels,
        parameters.erosion_px,
        parameters.homogeneity_pct,
        parameters.min_region_pixels,
    )
    for region in regions:
        region["name"] = row.region_names.get(region["label"], f"region {region['label']}")
    edges = metrics.edge_widths(
        truth,
        estimate,
        mask,
        labels,
        row.voxel_size_mm,
        parameters.edge_band_px,
        parameters.min_edge_contrast,
    )
    return RowResult(
        truth=truth[valid],
        estimate=estimate[valid],
        tissue_pixels=tissue,
        pixel=metrics.pixel_agreement(truth, estimate, mask),
        regions=regions,
        edges=edges,
        liver=_liver_roi(regions),
    )


def _liver_roi(regions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The region named 'liver', else the largest ROI (the background tissue), with stages."""
    if not regions:
        return None
    named = [r for r in regions if str(r["name"]).lower() == LIVER_REGION]
    roi = named[0] if named else max(regions, key=lambda r: r["n_pixels"])
    truth_stage, estimate_stage = fibrosis_stage([roi["truth_kpa"], roi["estimate_kpa"]])
    return {
        "label": roi["label"],
        "name": roi["name"],
        "truth_kpa": roi["truth_kpa"],
        "estimate_kpa": roi["estimate_kpa"],
        "truth_stage": int(truth_stage),
        "estimate_stage": int(estimate_stage),
    }


def group_metrics(results: Iterable[RowResult]) -> dict[str, Any]:
    """Pooled metrics of several rows of one method (see the module docstring)."""
    results = list(results)
    truth = np.concatenate([r.truth for r in results]) if results else np.zeros(0)
    estimate = np.concatenate([r.estimate for r in results]) if results else np.zeros(0)
    tissue = sum(r.tissue_pixels for r in results)
    pixel = metrics.agreement(truth, estimate)
    pixel["coverage"] = len(truth) / tissue if tissue else math.nan
    regions = [region for r in results for region in r.regions]
    roi = metrics.agreement([g["truth_kpa"] for g in regions], [g["estimate_kpa"] for g in regions])
    group = {
        "n_samples": len(results),
        "pixel": pixel,
        "roi": roi,
        "cv_pct": _cv_summary(regions),
        "edge_width_mm": _edge_summary([e for r in results for e in r.edges]),
        "staging": _staging_summary([r.liver for r in results if r.liver is not None]),
    }
    group["headline"] = headline(group)
    return group


def _cv_summary(regions: list[dict[str, Any]]) -> dict[str, Any]:
    homogeneous = [r for r in regions if r["homogeneous"]]
    return {
        "mean": _nanmean([r["cv_pct"] for r in homogeneous]),
        "truth_mean": _nanmean([r["truth_cv_pct"] for r in homogeneous]),
        "n_regions": len(homogeneous),
    }


def _edge_summary(edges: list[dict[str, Any]]) -> dict[str, Any]:
    widths = np.array([e["width_mm"] for e in edges], float)
    resolved = widths[np.isfinite(widths)]
    return {
        "mean": float(resolved.mean()) if resolved.size else math.nan,
        "median": float(np.median(resolved)) if resolved.size else math.nan,
        "truth_mean": _nanmean([e["truth_width_mm"] for e in edges]),
        "n_edges": len(edges),
        "n_resolved": int(resolved.size),
    }


def _staging_summary(livers: list[dict[str, Any]]) -> dict[str, Any]:
    matrix = confusion_matrix(
        [liver["truth_stage"] for liver in livers], [liver["estimate_stage"] for liver in livers]
    )
    return {"stages": list(STAGES), "matrix": matrix.tolist(), **stage_agreement(matrix)}


def headline(group: dict[str, Any]) -> dict[str, Any]:
    """The flat numbers of the summary table (units in the names)."""
    pixel, roi = group["pixel"], group["roi"]
    return {
        "n_samples": group["n_samples"],
        "coverage_pct": 100.0 * pixel["coverage"],
        "pearson_r": pixel["pearson_r"],
        "r2": pixel["r2"],
        "bias_kpa": pixel["bias_kpa"],
        "bias_pct": pixel["bias_pct"],
        "rmse_kpa": pixel["rmse_kpa"],
        "mape_pct": pixel["mape_pct"],
        "roi_pearson_r": roi["pearson_r"],
        "roi_bias_kpa": roi["bias_kpa"],
        "ba_lower_kpa": roi["bland_altman"]["lower"],
        "ba_upper_kpa": roi["bland_altman"]["upper"],
        "cv_pct": group["cv_pct"]["mean"],
        "truth_cv_pct": group["cv_pct"]["truth_mean"],
        "edge_width_mm": group["edge_width_mm"]["mean"],
        "truth_edge_width_mm": group["edge_width_mm"]["truth_mean"],
        "stage_agreement_pct": 100.0 * group["staging"]["exact"],
        "stage_kappa": group["staging"]["kappa"],
    }


def build_documents(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """The JSON documents of ``results/metrics``, by file name."""
    header = {
        "schema_version": METRICS_SCHEMA_VERSION,
        "methods": evaluation.methods,
        "families": evaluation.families,
    }
    return {
        "summary.json": {**header, "kind": "metrics-summary", "table": _summary(evaluation)},
        "groups.json": {**header, "kind": "metrics-groups", "table": _groups(evaluation)},
        "samples.json": {**header, "kind": "metrics-samples", "samples": _samples(evaluation)},
        "sweeps.json": {**header, "kind": "metrics-sweeps", **_sweeps(evaluation)},
        "provenance.json": {**header, "kind": "metrics-provenance", **_provenance(evaluation)},
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


def _provenance(evaluation: Evaluation) -> dict[str, Any]:
    pack = evaluation.pack
    config_hash = pack.attrs.get("config_hash")
    estimates = {
        method: {
            "path": str(evaluation.estimate_paths[method]),
            "source": store.attrs.get("source"),
            "config_hash": store.attrs.get("config_hash"),
            "parameters": store.attrs.get("parameters"),
            "versions": store.attrs.get("versions"),
            "seconds_total": float(np.sum(store.attrs.get("seconds") or [0.0])),
        }
        for method, store in evaluation.estimates.items()
    }
    return {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "truth": {
            "path": str(evaluation.truth_path),
            "split": pack.attrs.get("split"),
            "n_samples": len(pack),
            "families": pack.families,
            "config_hash": config_hash,
            "versions": pack.attrs.get("versions"),
            "sources": pack.attrs.get("sources"),
        },
        "estimates": estimates,
        "config_hash": config_hash,
        "config_hash_consistent": all(e["config_hash"] == config_hash for e in estimates.values()),
        "snr_levels": evaluation.snr_labels(),
        "parameters": asdict(evaluation.parameters),
        "versions": versions(),
    }


def versions() -> dict[str, str]:
    import matplotlib
    import scipy
    import zarr

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "zarr": zarr.__version__,
        "matplotlib": matplotlib.__version__,
        "dime_pipeline": __version__,
    }


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


def _nanmean(values: Iterable[float]) -> float:
    array = np.array(list(values), float)
    array = array[np.isfinite(array)]
    return float(array.mean()) if array.size else math.nan


def _load_estimates(
    pack: Pack, paths: Sequence[str | Path]
) -> tuple[dict[str, Estimates], dict[str, Path]]:
    """Read the stores, check they match the pack row by row, order them by METHOD_ORDER."""
    if not paths:
        raise UserError("give at least one estimates store")
    loaded: dict[str, tuple[Estimates, Path]] = {}
    seeds, shape = pack.column("seed"), pack.arrays["modulus"].shape
    for path in map(Path, paths):
        store = read_estimates(path)
        method = str(store.attrs.get("method", path.parent.name))
        if method in loaded:
            raise UserError(f"{path}: method {method!r} given twice (also {loaded[method][1]})")
        if store.modulus.shape != shape or not np.array_equal(store.seed, seeds):
            raise UserError(
                f"{path}: does not match {pack.path} row by row (shape {store.modulus.shape} vs "
                f"{shape}, or different sample seeds); was it inverted from this pack?"
            )
        if store.attrs.get("config_hash") != pack.attrs.get("config_hash"):
            log.warning("%s: config_hash differs from the pack's", path)
        loaded[method] = (store, path)
    ordered = sorted(loaded, key=_method_rank)
    return {m: loaded[m][0] for m in ordered}, {m: loaded[m][1] for m in ordered}


def _method_rank(method: str) -> tuple[int, str]:
    rank = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
    return rank, method


def _rows(pack: Pack) -> list[Row]:
    families = pack.families
    codes, seeds = pack.column("family"), pack.column("seed")
    snrs, frequencies = pack.column("snr"), pack.column("frequency_hz")
    voxels = pack.column("voxel_size_m") * 1e3
    sources = list(pack.attrs.get("sources") or [])
    return [
        Row(
            index=i,
            family=families[int(codes[i])],
            seed=int(seeds[i]),
            snr=float(snrs[i]),
            frequency_hz=float(frequencies[i]),
            voxel_size_mm=tuple(float(v) for v in voxels[i]),
            region_names=_region_names(pack.path, sources[i] if i < len(sources) else None),
        )
        for i in range(len(pack))
    ]


def _region_names(pack_path: Path, source: str | None) -> dict[int, str]:
    """Region id → name from the source sample store's ``regions`` attribute, if it can be read
    (packs keep region ids only); relative sources are tried from the working directory and from
    the folder above ``results/``."""
    if not source:
        return {}
    candidates = [Path(source)]
    parents = pack_path.resolve().parents
    if not Path(source).is_absolute() and len(parents) > 2:
        candidates.append(parents[2] / source)
    for candidate in candidates:
        try:
            attrs = json.loads((candidate / "zarr.json").read_text()).get("attributes", {})
            return {int(r["tag"]): str(r["name"]) for r in attrs.get("regions", [])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return {}
