"""Scoring: every metric of one method on one sample (:func:`evaluate_row`), and metrics pooled
over several samples (:func:`group_metrics`, with the flat :func:`headline` numbers).

Pooling: pixel-level metrics of a group use every evaluated pixel of its rows together (larger
samples weigh more); ROI-level metrics use the ROI mean of every region of every row; CV and edge
width are averaged over regions / edges; stages are counted over rows (one liver ROI each).
Metric definitions: :mod:`dime_pipeline.evaluation.metrics` and docs/evaluation.md, "Metrics".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dime_pipeline.evaluation import metrics
from dime_pipeline.evaluation.labels import snr_label
from dime_pipeline.evaluation.staging import (
    STAGES,
    confusion_matrix,
    fibrosis_stage,
    stage_agreement,
)

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
    wave_pattern: str  # one of config.WAVE_PATTERNS
    region_names: dict[int, str] = field(default_factory=dict)

    @property
    def snr_label(self) -> str:
        return snr_label(self.snr)


@dataclass
class RowResult:
    """One method on one row: evaluated pixels (kPa) kept for pooling, ROIs, edges, liver ROI."""

    truth: np.ndarray
    estimate: np.ndarray
    boundary_px: np.ndarray  # each evaluated pixel's resolution.boundary_distance_px
    width_px: np.ndarray  # … and resolution.region_width_px
    tissue_pixels: int
    pixel: dict[str, Any]
    regions: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    liver: dict[str, Any] | None


def evaluate_row(
    truth: np.ndarray,
    estimate: np.ndarray,
    mask: np.ndarray,
    labels: np.ndarray,
    row: Row,
    parameters: EvaluationParameters,
    geometry: tuple[np.ndarray, np.ndarray],
) -> RowResult:
    """Every metric of one method on one sample (arrays in kPa); ``geometry`` is the row's
    :func:`resolution.boundary_distance_px` and :func:`resolution.region_width_px`, the same for
    every method (computed once by the caller)."""
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
        boundary_px=geometry[0][valid],
        width_px=geometry[1][valid],
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


def _nanmean(values: Iterable[float]) -> float:
    array = np.array(list(values), float)
    array = array[np.isfinite(array)]
    return float(array.mean()) if array.size else math.nan
