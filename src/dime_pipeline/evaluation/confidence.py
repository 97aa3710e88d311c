"""Whether DIME's confidence means what it says on the test set: the coverage of its bands.

DIME's confidence is exp(−σ), σ its (calibrated) standard deviation of ln|G*|
(``dime.calibration``); the band ln|Ĝ| ± t_ν(p) σ (ν the model's band shape, recorded in the
store's parameters) should hold the truth in a fraction p of pixels.
Pooled over every evaluated pixel of the test set and per family and noise level, at the levels
of ``dime.calibration.LEVELS``. Other methods' confidences (MMDI's, DI's: the fraction of
variance their local fit explains) are not error bars and get no coverage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dime_pipeline.estimates import Estimates
    from dime_pipeline.evaluation.evaluate import Evaluation

COVERED_METHODS = ("dime",)
TOLERANCE = 0.05  # calibrated: every level within 5 points of nominal (docs/dime.md)


def coverage_document(evaluation: Evaluation) -> dict[str, Any]:
    """method → {"levels", "all", "pixels", "by_family": {family: curve}, "by_snr": {label:
    curve}} for the methods whose confidence is an error bar (empty: none evaluated)."""
    from dime_pipeline.dime.calibration import LEVELS

    out: dict[str, Any] = {}
    for method in COVERED_METHODS:
        store = evaluation.estimates.get(method)
        if store is None:
            continue
        everything = list(range(len(evaluation.rows)))
        curve, pixels = _curve(evaluation, store, everything)
        out[method] = {
            "levels": list(LEVELS),
            "all": curve,
            "pixels": pixels,
            "by_family": {
                f: _curve(evaluation, store, evaluation.select(family=f))[0]
                for f in evaluation.families
            },
            "by_snr": {
                s: _curve(evaluation, store, evaluation.select(snr=s))[0]
                for s in evaluation.snr_labels()
            },
        }
    return out


def _curve(
    evaluation: Evaluation, store: Estimates, indices: Sequence[int]
) -> tuple[dict[str, float], int]:
    """Coverage per level over the evaluated pixels of the rows ``indices``, and their count."""
    from dime_pipeline.dime.calibration import curve, residuals

    rows = list(indices)
    confidence = store.confidence[rows].astype(float)
    region = evaluation.pack.column("mask")[rows].astype(bool) & np.isfinite(confidence)
    truth = evaluation.pack.column("modulus")[rows]
    residual, sigma = residuals(store.modulus[rows], confidence, truth, region)
    return curve(residual, sigma, dof=band_dof(store)), int(residual.size)


def band_dof(store: Estimates) -> float | None:
    """The Student-t degrees of freedom of the bands of the model that wrote ``store`` (None:
    Gaussian bands, as for a model without calibration or a store written before it)."""
    parameters = store.attrs.get("parameters") or {}
    dof = (parameters.get("calibration") or {}).get("band_dof")
    return None if dof is None else float(dof)


def calibration_figure(curves: Mapping[str, Mapping[str, float]], title: str) -> Any:
    """Observed against nominal coverage, one line per curve, the identity and ±5 points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.4, 4.2), constrained_layout=True)
    nominal = np.linspace(0, 1, 2)
    ax.fill_between(nominal, nominal - TOLERANCE, nominal + TOLERANCE, color="0.9", label="±5")
    ax.plot(nominal, nominal, "k--", lw=0.8)
    for label, values in curves.items():
        levels = [float(level) for level in values]
        ax.plot(levels, list(values.values()), "o-", label=label)
    ax.set_xlim(0.4, 1.0)
    ax.set_ylim(0.4, 1.0)
    ax.set_xlabel("nominal coverage of the band")
    ax.set_ylabel("observed coverage (test set)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
