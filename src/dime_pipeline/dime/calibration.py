"""Calibrated confidence for DIME: temperature scaling of the predicted σ of ln|G*|.

The network predicts, per pixel, σ of ln|G*| (``inference``: the confidence map is exp(−σ)).
Read as a Gaussian error on ln|G*|, the band ln|Ĝ| ± z_p σ should hold the truth in a fraction p
of pixels (z_p the two-sided normal quantile: 1.0 for 68 %, 1.96 for 95 %). A network trained
with a Gaussian likelihood on a different distribution is rarely calibrated; one scalar T, fitted
on the validation set, rescales σ → Tσ (temperature scaling, Guo et al., ICML 2017). T is chosen
to minimise the squared coverage error over ``LEVELS``; the model file keeps it
(``calibration.log_std_scale``) and inference applies it, so the confidence maps every command
writes are the calibrated ones.

Coverage is measured where the method gave an estimate inside the mask, pooled over pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, stats

from dime_pipeline.errors import UserError

LEVELS = (0.5, 0.68, 0.8, 0.9, 0.95)  # nominal coverages fitted and reported
SCALE_BOUNDS = (0.05, 50.0)  # a temperature outside these means a broken model, not a calibration
MAX_PIXELS = 2_000_000  # pixels used for a fit (an even subsample beyond, seeded)


def quantile(level: float) -> float:
    """z with P(|N(0, 1)| ≤ z) = level."""
    return float(stats.norm.ppf(0.5 + level / 2))


def coverage(residual: np.ndarray, sigma: np.ndarray, level: float, scale: float = 1.0) -> float:
    """Fraction of pixels with |residual| ≤ z_level · scale · σ."""
    if residual.size == 0:
        return float("nan")
    return float(np.mean(np.abs(residual) <= quantile(level) * scale * sigma))


def curve(
    residual: np.ndarray, sigma: np.ndarray, scale: float = 1.0, levels: Sequence[float] = LEVELS
) -> dict[str, float]:
    """Observed coverage per nominal level, keyed by the level as text ("0.68")."""
    return {f"{level:g}": coverage(residual, sigma, level, scale) for level in levels}


def fit_scale(residual: np.ndarray, sigma: np.ndarray, levels: Sequence[float] = LEVELS) -> float:
    """The T minimising Σ_p (coverage_p(Tσ) − p)², searched on log T within SCALE_BOUNDS."""
    if residual.size == 0:
        raise UserError("no pixels to calibrate the confidence on")
    ratio = np.abs(residual) / np.maximum(sigma, np.finfo(float).tiny)

    def loss(log_scale: float) -> float:
        scale = math.exp(log_scale)
        return sum((float(np.mean(ratio <= quantile(p) * scale)) - p) ** 2 for p in levels)

    # coverage is a step function of T: a grid finds the basin, a bounded search refines it
    grid = np.linspace(*np.log(SCALE_BOUNDS), 121)
    start = int(np.argmin([loss(x) for x in grid]))
    low, high = grid[max(start - 1, 0)], grid[min(start + 1, grid.size - 1)]
    best = optimize.minimize_scalar(loss, bounds=(low, high), method="bounded")
    return float(math.exp(best.x if best.fun <= loss(grid[start]) else grid[start]))


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
    residual: np.ndarray, sigma: np.ndarray, scale: float, fitted_on: Sequence[str | Path]
) -> dict[str, Any]:
    """What the model file keeps: the scale, the data it was fitted on, coverage before/after."""
    return {
        "log_std_scale": scale,
        "method": "temperature scaling of sigma(ln|G*|), squared coverage error over levels",
        "levels": list(LEVELS),
        "fitted_on": [str(p) for p in fitted_on],
        "pixels": int(residual.size),
        "coverage_before": curve(residual, sigma, 1.0),
        "coverage_after": curve(residual, sigma, scale),
    }


def checked_scale(record: Mapping[str, Any] | None, source: str) -> float:
    """The log_std_scale of a model file's calibration record (1 without one); UserError if it
    is not a finite number within SCALE_BOUNDS."""
    if record is None:
        return 1.0
    try:
        scale = float(record["log_std_scale"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{source}: calibration without a numeric log_std_scale") from None
    if not (math.isfinite(scale) and SCALE_BOUNDS[0] <= scale <= SCALE_BOUNDS[1]):
        raise UserError(
            f"{source}: calibration log_std_scale {scale!r} lies outside {SCALE_BOUNDS}"
        )
    return scale


def calibrate_model(
    model_path: str | Path, packs: Sequence[str | Path], out_path: str | Path
) -> dict[str, Any]:
    """Invert every row of the validation ``packs`` with the model at ``model_path``, fit its
    temperature and write the model with that calibration to ``out_path`` (it may be
    ``model_path``: the file is replaced atomically). Returns the calibration record."""
    from dime_pipeline.datasets import Pack
    from dime_pipeline.dime.inference import load_model, with_calibration
    from dime_pipeline.inversion.methods import inverter
    from dime_pipeline.inversion.packs import invert_rows

    if not packs:
        raise UserError("give at least one validation pack to calibrate on")
    model = load_model(model_path)
    invert, _ = inverter("dime", model_path)
    parts = []
    for path in packs:
        pack = Pack(path)
        masks = pack.column("mask").astype(bool)
        modulus, confidence, _ = invert_rows(pack, invert, "dime", masks)
        region = masks & np.isfinite(confidence)
        residual, sigma = residuals(modulus, confidence, pack.column("modulus"), region)
        parts.append((residual, sigma / model.log_std_scale))  # back to the network's own σ
    residual, sigma = subsample(np.concatenate(p) for p in zip(*parts, strict=True))
    scale = fit_scale(residual, sigma)
    record = calibration_record(residual, sigma, scale, packs)
    with_calibration(model_path, record, out_path)
    return record
