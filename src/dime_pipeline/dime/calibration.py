"""Calibrated confidence for DIME: a temperature and a tail for the predicted σ of ln|G*|.

The network predicts, per pixel, σ of ln|G*| (``inference``: the confidence map is exp(−σ)).
A network trained with a Gaussian likelihood is rarely calibrated, and its errors have heavier
tails than a Gaussian: on the shipped model's validation split the 95 % quantile of |error|/σ is
2.9 times the 68 % one, against 1.97 for a Gaussian, so no single rescaling of σ makes both the
68 % and the 95 % band right. Two numbers, fitted on the validation set, fix it:

- the temperature T rescales σ → Tσ (temperature scaling, Guo et al., ICML 2017); the
  confidence map every command writes is exp(−Tσ);
- the band's shape is a Student t with ν degrees of freedom: the central band of level p is
  ln|Ĝ| ± t_ν(p) Tσ (ν = ∞ is the Gaussian band ±z_p Tσ).

(T, ν) minimise the worst coverage error over ``LEVELS`` (ν from ``DOFS``; the larger ν among
equals). The model file keeps both (``calibration``: ``log_std_scale``, ``band_dof``); a user's
band of level p is ±``band_halfwidth(p, dof)`` · σ with σ = −ln(confidence).
Coverage is measured where the method gave an estimate inside the mask, pooled over pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from dime_pipeline.errors import UserError

LEVELS = (0.5, 0.68, 0.8, 0.9, 0.95)  # nominal coverages fitted and reported
DOFS: tuple[float | None, ...] = (2.0, 2.5, 3.0, 4.0, 6.0, 10.0, None)  # None: Gaussian
SCALE_BOUNDS = (0.05, 50.0)  # a temperature outside these means a broken model, not a calibration
MAX_PIXELS = 2_000_000  # pixels used for a fit (an even subsample beyond, seeded)


def band_halfwidth(level: float, dof: float | None = None) -> float:
    """The central band of ``level`` is ±(this)·σ: t_ν's two-sided quantile, or z's for None."""
    distribution = stats.norm if dof is None else stats.t(dof)
    return float(distribution.ppf(0.5 + level / 2))


def coverage(
    residual: np.ndarray,
    sigma: np.ndarray,
    level: float,
    scale: float = 1.0,
    dof: float | None = None,
) -> float:
    """Fraction of pixels with |residual| ≤ band_halfwidth(level, dof) · scale · σ."""
    if residual.size == 0:
        return float("nan")
    return float(np.mean(np.abs(residual) <= band_halfwidth(level, dof) * scale * sigma))


def curve(
    residual: np.ndarray,
    sigma: np.ndarray,
    scale: float = 1.0,
    dof: float | None = None,
    levels: Sequence[float] = LEVELS,
) -> dict[str, float]:
    """Observed coverage per nominal level, keyed by the level as text ("0.68")."""
    return {f"{level:g}": coverage(residual, sigma, level, scale, dof) for level in levels}


def fit_calibration(
    residual: np.ndarray, sigma: np.ndarray, levels: Sequence[float] = LEVELS
) -> tuple[float, float | None]:
    """(T, ν) minimising max_p |coverage_p − p|: per ν of DOFS the best T on a fine log grid
    within SCALE_BOUNDS, then the ν with the smallest worst error (the larger ν among equals)."""
    if residual.size == 0:
        raise UserError("no pixels to calibrate the confidence on")
    ratio = np.sort(np.abs(residual) / np.maximum(sigma, np.finfo(float).tiny))
    scales = np.exp(np.linspace(*np.log(SCALE_BOUNDS), 2001))  # 0.35 % steps
    fits = []  # (worst coverage error, ν, T)
    for dof in DOFS:
        widths = np.array([band_halfwidth(p, dof) for p in levels])
        covered = np.searchsorted(ratio, np.outer(scales, widths), side="right") / ratio.size
        worst = np.max(np.abs(covered - np.asarray(levels)), axis=1)
        index = int(np.argmin(worst))
        fits.append((float(worst[index]), dof, float(scales[index])))
    least = min(worst for worst, _, _ in fits)
    near = [fit for fit in fits if fit[0] <= least + 1e-4]  # ties within 0.01 points
    _, dof, scale = max(near, key=lambda fit: math.inf if fit[1] is None else fit[1])
    return scale, dof


def residuals(
    estimate: np.ndarray, confidence: np.ndarray, truth: np.ndarray, region: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(ln|Ĝ| − ln|G|, σ) on ``region`` where both moduli are positive and σ = −ln(confidence)
    is finite; inputs are arrays of one shape (any number of samples)."""
    estimate, truth = np.abs(estimate), np.abs(truth)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = -np.log(confidence)
        keep = region & (estimate > 0) & (truth > 0) & np.isfinite(sigma) & (sigma > 0)
        return np.log(estimate[keep] / truth[keep]), sigma[keep]


def subsample(arrays: Iterable[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """The same seeded subsample of MAX_PIXELS entries of each array (all if fewer)."""
    arrays = list(arrays)
    n = arrays[0].size
    if n <= MAX_PIXELS:
        return arrays
    keep = np.random.default_rng(seed).choice(n, MAX_PIXELS, replace=False)
    return [a[keep] for a in arrays]


def calibration_record(
    residual: np.ndarray,
    sigma: np.ndarray,
    scale: float,
    dof: float | None,
    fitted_on: Sequence[str | Path],
) -> dict[str, Any]:
    """What the model file keeps: T and ν, the data they were fitted on, coverage before (the
    network's own σ, Gaussian bands) and after."""
    return {
        "log_std_scale": scale,
        "band_dof": dof,
        "method": "temperature scaling of sigma(ln|G*|) and Student-t bands, minimax coverage",
        "levels": list(LEVELS),
        "fitted_on": [str(p) for p in fitted_on],
        "pixels": int(residual.size),
        "coverage_before": curve(residual, sigma),
        "coverage_after": curve(residual, sigma, scale, dof),
    }


def checked_calibration(
    record: Mapping[str, Any] | None, source: str
) -> tuple[float, float | None]:
    """(log_std_scale, band_dof) of a model file's calibration record ((1, None) without one);
    UserError if the scale is not a finite number within SCALE_BOUNDS or ν is not > 1."""
    if record is None:
        return 1.0, None
    try:
        scale = float(record["log_std_scale"])
        dof = record.get("band_dof")
        dof = None if dof is None else float(dof)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UserError(f"{source}: calibration without a numeric log_std_scale") from None
    if not (math.isfinite(scale) and SCALE_BOUNDS[0] <= scale <= SCALE_BOUNDS[1]):
        raise UserError(
            f"{source}: calibration log_std_scale {scale!r} lies outside {SCALE_BOUNDS}"
        )
    if dof is not None and not (math.isfinite(dof) and dof > 1):
        raise UserError(f"{source}: calibration band_dof {dof!r} must be a number > 1 or null")
    return scale, dof


def calibrate_model(
    model_path: str | Path, packs: Sequence[str | Path], out_path: str | Path
) -> dict[str, Any]:
    """Invert every row of the validation ``packs`` with the model at ``model_path``, fit its
    temperature and band shape and write the model with that calibration to ``out_path`` (it may be
    ``model_path``: the file is replaced atomically). Returns the calibration record."""
    from dime_pipeline.datasets import Pack
    from dime_pipeline.dime.model_file import with_calibration
    from dime_pipeline.inversion.methods import inverter
    from dime_pipeline.inversion.packs import invert_rows

    if not packs:
        raise UserError("give at least one validation pack to calibrate on")
    invert, description = inverter("dime", model_path)
    current = description["calibration"]["log_std_scale"]  # a calibrated model's own T
    parts = []
    for path in packs:
        pack = Pack(path)
        masks = pack.column("mask").astype(bool)
        modulus, confidence, _ = invert_rows(pack, invert, "dime", masks)
        region = masks & np.isfinite(confidence)
        residual, sigma = residuals(modulus, confidence, pack.column("modulus"), region)
        parts.append((residual, sigma / current))  # back to the network's own σ
    residual, sigma = subsample(np.concatenate(p) for p in zip(*parts, strict=True))
    scale, dof = fit_calibration(residual, sigma)
    record = calibration_record(residual, sigma, scale, dof, packs)
    with_calibration(model_path, record, out_path)
    return record
