"""Labels and provenance of the evaluation: how noise levels, methods and regions are named, and
what ``provenance.json`` records about the inputs, parameters and software versions.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dime_pipeline.provenance import package_versions

if TYPE_CHECKING:
    from dime_pipeline.evaluation.evaluate import Evaluation

NOISE_FREE = "inf"
METHOD_ORDER = ("dime", "mmdi", "di")  # the report's column order; unknown methods follow
REPORT_PACKAGES = ("numpy", "scipy", "zarr", "matplotlib", "dime_pipeline")  # in "versions"


# The evaluation's figure folders under results/figures (evaluate writes them, report reads them).
FIGURE_KINDS = ("maps", "scatter", "bland_altman", "noise", "sweeps", "confidence")


def snr_label(snr: float) -> str:
    """'inf' for noise-free, else the SNR as ``%g`` (the workflow's ``snr-{label}`` wildcard)."""
    return NOISE_FREE if math.isinf(snr) else f"{snr:g}"


def snr_title(label: str) -> str:
    return "noise-free" if label == NOISE_FREE else f"SNR {label}"


def pattern_title(pattern: str) -> str:
    """A wave pattern as the report writes it: 'multi_driver' → 'multi-driver'."""
    return pattern.replace("_", "-")


def method_title(method: str) -> str:
    return method.upper()


def method_rank(method: str) -> tuple[int, str]:
    """Sort key: METHOD_ORDER first, then any other method by name."""
    rank = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
    return rank, method


def region_names(pack_path: Path, source: str | None) -> dict[int, str]:
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


def versions() -> dict[str, str]:
    """Python and the packages the evaluation and the report run on."""
    return package_versions(*REPORT_PACKAGES)


def provenance(evaluation: Evaluation) -> dict[str, Any]:
    """The body of ``provenance.json``: the truth pack, every estimates store, the evaluation's
    parameters and versions, and whether all inputs share the pack's config hash."""
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
            "patterns": pack.patterns,
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
