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

    stores = {m: evaluation.estimates[m] for m in COVERED_METHODS if m in evaluation.estimates}
    if not stores:
        return {}
    truth = evaluation.pack.column("modulus")  # read once for every group below
    masks = evaluation.pack.column("mask").astype(bool)
    out: dict[str, Any] = {}
    for method, store in stores.items():
        arrays = (store.modulus, store.confidence.astype(float), truth, masks)
        dof = band_dof(store)
        pooled, pixels = _group_curve(*arrays, range(len(evaluation.rows)), dof)
        out[method] = {
            "levels": list(LEVELS),
            "all": pooled,
            "pixels": pixels,
            "by_family": {
                f: _group_curve(*arrays, evaluation.select(family=f), dof)[0]
                for f in evaluation.families
            },
            "by_snr": {
                s: _group_curve(*arrays, evaluation.select(snr=s), dof)[0]
                for s in evaluation.snr_labels()
            },
        }
    return out


def _group_curve(
    modulus: np.ndarray,
    confidence: np.ndarray,
    truth: np.ndarray,
    masks: np.ndarray,
    rows: Sequence[int],
    dof: float | None,
) -> tuple[dict[str, float], int]:
    """Coverage per level over the evaluated pixels of ``rows`` (in-mask, with a confidence),
    and how many pixels that is."""
    from dime_pipeline.dime.calibration import curve, residuals

    rows = list(rows)
    region = masks[rows] & np.isfinite(confidence[rows])
    residual, sigma = residuals(modulus[rows], confidence[rows], truth[rows], region)
    return curve(residual, sigma, dof=dof), int(residual.size)


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
