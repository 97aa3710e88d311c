"""The evaluation's figures: which ones, where they go, and ``manifest.json`` for the report.

Layout under the figures folder (one subfolder per kind, so ``snakemake --report`` can give
each kind its own caption):

==================================  =====================================================
``maps/{family}/snr-{snr}.png``     truth | each method | each method − truth, per sample
``scatter/{family}.png``            estimate vs truth per method, all noise levels
``bland_altman/{family}.png``       Bland–Altman of ROI means per method
``noise/{family}.png``              metrics vs SNR (two or more noise levels)
``sweeps/{family}/{variable}.png``  metrics vs frequency / voxel size (two or more levels)
``manifest.json``                   every figure: kind, family, snr, variable, path, title
==================================  =====================================================

Each kind's folder is drawn in a temporary sibling and renamed into place, and the manifest is
written last: a killed job leaves no half-drawn folder and no manifest naming missing figures.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from dime_pipeline.errors import UserError
from dime_pipeline.evaluation import figures
from dime_pipeline.evaluation.confidence import calibration_figure
from dime_pipeline.evaluation.evaluate import Evaluation, RowResult, method_title, snr_title
from dime_pipeline.evaluation.labels import FIGURE_KINDS
from dime_pipeline.store import atomic_directory
from dime_pipeline.textio import write_text_atomic

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CURVE_PANELS = (
    ("mape_pct", "MAPE (%)"),
    ("bias_pct", "bias (%)"),
    ("pearson_r", "Pearson r"),
    ("cv_pct", "CV in homogeneous ROIs (%)"),
)
EDGE_PANEL = ("edge_width_mm", "10–90 % edge width (mm)")
SWEEP_TITLES = {"frequency_hz": "frequency (Hz)", "voxel_size_mm": "voxel size (mm)"}


def write_figures(evaluation: Evaluation, figures_dir: str | Path) -> list[dict[str, Any]]:
    """Draw every figure of the evaluation into ``figures_dir``; write and return the manifest."""
    root = Path(figures_dir)
    entries: list[dict[str, Any]] = []
    try:
        (root / MANIFEST).unlink(missing_ok=True)  # an old one may name other figures
        with ExitStack() as stack:  # every folder renamed into place only once all are drawn
            folders = {
                kind: stack.enter_context(atomic_directory(root / kind)) for kind in FIGURE_KINDS
            }
            for folder in folders.values():  # all present, even if empty: workflow outputs
                folder.mkdir()
            for family in evaluation.families:
                entries += _family_figures(evaluation, family, folders)
            entries += _confidence_figures(evaluation, folders)
        write_text_atomic(
            root / MANIFEST,
            json.dumps({"schema_version": 1, "kind": "figures", "figures": entries}, indent=1),
        )
    except OSError as error:
        raise UserError(f"cannot write figures to {root} ({error.strerror or error})") from None
    log.info("wrote %d figures to %s", len(entries), root)
    return entries


def _family_figures(
    evaluation: Evaluation, family: str, folders: Mapping[str, Path]
) -> list[dict[str, Any]]:
    entries = []
    for label in evaluation.snr_labels(family):
        title = f"{family}, {snr_title(label)}"
        figure = maps_for(evaluation, family, label)
        entries.append(
            _save(folders, figure, "maps", f"{family}/snr-{label}.png", title, family, snr=label)
        )
    groups = evaluation.snr_labels(family)
    panels = paired_panels(evaluation, family)
    entries.append(
        _save(
            folders,
            figures.scatter_figure(
                panels, [snr_title(g) for g in groups], f"{family}: estimate vs ground truth"
            ),
            "scatter",
            f"{family}.png",
            f"{family}: scatter",
            family,
        )
    )
    entries.append(
        _save(
            folders,
            figures.bland_altman_figure(
                panels, [snr_title(g) for g in groups], f"{family}: Bland–Altman, ROI means"
            ),
            "bland_altman",
            f"{family}.png",
            f"{family}: Bland–Altman",
            family,
        )
    )
    entries += _curve_figures(evaluation, family, folders)
    return entries


def _save(
    folders: Mapping[str, Path],
    figure: Any,
    kind: str,
    name: str,
    title: str,
    family: str,
    **extra: str,
) -> dict[str, Any]:
    figures.write_png(figure, folders[kind] / name)
    return {"kind": kind, "family": family, "path": f"{kind}/{name}", "title": title, **extra}


def _confidence_figures(
    evaluation: Evaluation, folders: Mapping[str, Path]
) -> list[dict[str, Any]]:
    """One calibration curve per method whose confidence is an error bar, per noise level."""
    entries = []
    for method, coverage in evaluation.documents["summary.json"]["coverage"].items():
        curves = {snr_title(label): curve for label, curve in coverage["by_snr"].items()}
        title = f"{method_title(method)}: confidence bands"
        figure = calibration_figure({"all": coverage["all"], **curves}, title)
        entries.append(
            _save(folders, figure, "confidence", f"{method}.png", title, "", method=method)
        )
    return entries


def maps_for(evaluation: Evaluation, family: str, label: str) -> Any:
    """Map figure of the first ``max_map_rows`` samples of one family and noise level."""
    indices = evaluation.select(family, label)
    rows = []
    for index in indices[: evaluation.parameters.max_map_rows]:
        row = evaluation.rows[index]
        sample = evaluation.pack.sample(index)
        mask = _middle(sample["mask"].astype(bool))
        truth = np.where(mask, _middle(np.abs(sample["modulus"])) / 1e3, np.nan)
        estimates = {
            method: np.where(mask, _middle(np.abs(store.modulus[index])) / 1e3, np.nan)
            for method, store in evaluation.estimates.items()
        }
        crop = _bounding_box(mask)
        rows.append(
            figures.MapRow(
                title=f"seed {row.seed}\n{row.frequency_hz:.0f} Hz",
                truth=truth[crop],
                estimates={m: e[crop] for m, e in estimates.items()},
            )
        )
    title = f"{family}, {snr_title(label)}: |G*| maps (kPa)"
    return figures.maps_figure(rows, evaluation.methods, title)


def _middle(array: np.ndarray) -> np.ndarray:
    """A 2D map: the array itself, or the middle z slice of a 3D one."""
    return array if array.ndim == 2 else array[array.shape[0] // 2]


def _bounding_box(mask: np.ndarray, margin: int = 1) -> tuple[slice, ...]:
    if not mask.any():
        return tuple(slice(None) for _ in mask.shape)
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(hits[0] - margin, 0), hits[-1] + margin + 1))
    return tuple(box)


def paired_panels(evaluation: Evaluation, family: str) -> list[figures.PairedPanel]:
    """Scatter / Bland–Altman data per method: subsampled pixels and all ROI means."""
    indices = evaluation.select(family)
    summary = evaluation.documents["summary.json"]["table"][family]
    panels = []
    for method in evaluation.methods:
        results = [evaluation.results[method][i] for i in indices]
        labels = [snr_title(evaluation.rows[i].snr_label) for i in indices]
        group = summary[method]
        panels.append(_panel(method, results, labels, group, evaluation.parameters.scatter_points))
    return panels


def _panel(
    method: str,
    results: Sequence[RowResult],
    labels: Sequence[str],
    group: dict[str, Any],
    points: int,
) -> figures.PairedPanel:
    truth = np.concatenate([r.truth for r in results])
    estimate = np.concatenate([r.estimate for r in results])
    groups = np.concatenate(
        [np.full(r.truth.size, g, dtype=object) for r, g in zip(results, labels, strict=True)]
    )
    if truth.size > points:  # deterministic subsample keeps the figure light
        pick = np.sort(np.random.default_rng(0).choice(truth.size, points, replace=False))
        truth, estimate, groups = truth[pick], estimate[pick], groups[pick]
    regions = [(reg, g) for r, g in zip(results, labels, strict=True) for reg in r.regions]
    pixel, roi = group["pixel"], group["roi"]
    return figures.PairedPanel(
        method=method,
        truth=truth,
        estimate=estimate,
        groups=groups,
        roi_truth=np.array([reg["truth_kpa"] for reg, _ in regions], float),
        roi_estimate=np.array([reg["estimate_kpa"] for reg, _ in regions], float),
        roi_groups=np.array([g for _, g in regions], dtype=object),
        note=f"r = {_fmt(pixel['pearson_r'], '.3f')}, MAPE = {_fmt(pixel['mape_pct'], '.1f')} %",
        limits=roi["bland_altman"],
    )


def _curve_figures(
    evaluation: Evaluation, family: str, folders: Mapping[str, Path]
) -> list[dict[str, Any]]:
    sweeps = evaluation.documents["sweeps.json"]["sweeps"]
    entries = []
    for variable in ("snr", *SWEEP_TITLES):
        sweep = sweeps[variable][family]
        if len(sweep["levels"]) < 2:
            continue
        panels = _defined_panels(sweep["methods"])
        if not panels:
            continue
        labels = [level["label"] for level in sweep["levels"]]
        if variable == "snr":
            figure = figures.curves_figure(
                [snr_title(x) for x in labels],
                None,
                sweep["methods"],
                panels,
                "noise level",
                f"{family}: metrics vs noise",
            )
            entries.append(
                _save(folders, figure, "noise", f"{family}.png", f"{family}: noise", family)
            )
        else:
            positions = [level["value"] for level in sweep["levels"]]
            figure = figures.curves_figure(
                labels,
                positions,
                sweep["methods"],
                panels,
                SWEEP_TITLES[variable],
                f"{family}: metrics vs {SWEEP_TITLES[variable]}",
            )
            entries.append(
                _save(
                    folders,
                    figure,
                    "sweeps",
                    f"{family}/{variable}.png",
                    f"{family}: {SWEEP_TITLES[variable]}",
                    family,
                    variable=variable,
                )
            )
    return entries


def _defined_panels(series: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str]]:
    """Curve panels with at least one finite value (e.g. no Pearson r for a single homogeneous
    phantom per level, no edge width without inclusions)."""
    return [
        (key, label)
        for key, label in (*CURVE_PANELS, EDGE_PANEL)
        if any(_finite(h.get(key)) for values in series.values() for h in values)
    ]


def read_manifest(figures_dir: str | Path) -> list[dict[str, Any]]:
    """The figure entries of ``figures_dir/manifest.json`` (one-line error if unreadable)."""
    path = Path(figures_dir) / MANIFEST
    try:
        document = json.loads(path.read_text())
        entries = list(document["figures"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path}: no readable figure manifest ({error})") from None
    return entries


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and np.isfinite(value)


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if _finite(value) else "n/a"
