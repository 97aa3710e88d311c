"""Evaluate a packed test set against any number of estimates stores (one per method).

Every row of the pack is one (phantom, noise level) pair. :func:`evaluate` loads the pack and the
stores, scores each method per row and builds the documents of ``results/metrics``. The work is
split by concern:

* :mod:`~dime_pipeline.evaluation.scoring`: per-sample and pooled (per-group) metrics;
* :mod:`~dime_pipeline.evaluation.documents`: the JSON documents and writing them;
* :mod:`~dime_pipeline.evaluation.labels`: names of noise levels, methods and regions, and
  ``provenance.json``.

Their public names are importable from here too (``from dime_pipeline.evaluation.evaluate
import ...``), as before the split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dime_pipeline.config import WAVE_PATTERNS
from dime_pipeline.datasets import Pack
from dime_pipeline.errors import UserError
from dime_pipeline.estimates import Estimates, read_estimates
from dime_pipeline.evaluation import resolution
from dime_pipeline.evaluation.documents import (
    METRIC_FILES,
    METRICS_SCHEMA_VERSION,
    build_documents,
    dumps,
    write_metrics,
)
from dime_pipeline.evaluation.labels import (
    METHOD_ORDER,
    NOISE_FREE,
    method_rank,
    method_title,
    pattern_title,
    region_names,
    snr_label,
    snr_title,
    versions,
)
from dime_pipeline.evaluation.scoring import (
    LIVER_REGION,
    EvaluationParameters,
    Row,
    RowResult,
    evaluate_row,
    group_metrics,
    headline,
)

__all__ = [
    "LIVER_REGION",
    "METHOD_ORDER",
    "METRICS_SCHEMA_VERSION",
    "METRIC_FILES",
    "NOISE_FREE",
    "Evaluation",
    "EvaluationParameters",
    "Row",
    "RowResult",
    "build_documents",
    "dumps",
    "evaluate",
    "evaluate_row",
    "group_metrics",
    "headline",
    "method_title",
    "pattern_title",
    "snr_label",
    "snr_title",
    "versions",
    "write_metrics",
]

log = logging.getLogger(__name__)


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

    @property
    def patterns(self) -> list[str]:
        """The rows' wave patterns, in the order of ``config.WAVE_PATTERNS``."""
        return sorted({row.wave_pattern for row in self.rows}, key=WAVE_PATTERNS.index)

    def snr_labels(self, family: str | None = None, pattern: str | None = None) -> list[str]:
        snrs = {
            row.snr
            for row in self.rows
            if family in (None, row.family) and pattern in (None, row.wave_pattern)
        }
        return [snr_label(s) for s in sorted(snrs)]

    def select(
        self, family: str | None = None, snr: str | None = None, pattern: str | None = None
    ) -> list[int]:
        """Indices of the rows of ``family`` at noise level ``snr`` (a label) of wave pattern
        ``pattern`` (each: all if None)."""
        return [
            row.index
            for row in self.rows
            if family in (None, row.family)
            and snr in (None, row.snr_label)
            and pattern in (None, row.wave_pattern)
        ]


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
    # a row's geometry, the same for every method: computed once
    geometry = [
        (resolution.boundary_distance_px(m, ids), resolution.region_width_px(m, ids))
        for m, ids in zip(masks, labels, strict=True)
    ]
    results: dict[str, list[RowResult]] = {}
    for method, store in estimates.items():
        estimate_kpa = np.abs(store.modulus).astype(float) / 1e3
        results[method] = [
            evaluate_row(
                truth_kpa[i], estimate_kpa[i], masks[i], labels[i], row, parameters, geometry[i]
            )
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
    ordered = sorted(loaded, key=method_rank)
    return {m: loaded[m][0] for m in ordered}, {m: loaded[m][1] for m in ordered}


def _rows(pack: Pack) -> list[Row]:
    families, patterns = pack.families, pack.wave_patterns()
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
            wave_pattern=patterns[i],
            region_names=region_names(pack.path, sources[i] if i < len(sources) else None),
        )
        for i in range(len(pack))
    ]
