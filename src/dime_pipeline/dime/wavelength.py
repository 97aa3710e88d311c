"""Wavelength adaptivity: a slice whose shear wavelength lies outside the band of pixels the
network reads best is also inverted resampled towards that band, and the passes are blended.

The network's output is dimensionless, g = G*/(ρω²ΔyΔx), so a slice resampled by s per axis is
the same physics on pixels s times larger: g on the coarse grid times s_y s_x is g on the fine
one. A trained model reads well only the wavelengths (in pixels) it was trained on (the shipped
one underestimates |G*| beyond about 40 px: −25 % at 60 px, −52 % at 80). The first pass runs on
the slice as it is; its median |g| gives the wavelength, λ/Δ = 2π√|g|. Outside ``BAND_PX`` the
slice is resampled (a long-wave one to ``TARGET_PX``, a short-wave one only to ``REFINED_PX``)
and inverted again; an underestimate at a long wavelength still points the right way, so the
next pass, nearer the band, corrects it (at most ``MAX_PASSES``). Each pixel then takes the
passes by how near its local wavelength, in each pass's own pixels, lies to ``TARGET_PX``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import ndimage

TARGET_PX = 20.0  # px per wavelength for long-wave slices (the shipped model: 12-30 best)
# A short-wave slice is refined only to here: a slice holds several wavelengths (soft fat, a
# stiffer liver), and refining to 20 would push its stiffer parts beyond the band.
REFINED_PX = 12.0
BAND_PX = (10.0, 32.0)  # no resampling while the estimate lies here
MAX_PASSES = 3
MIN_SCALE, MAX_SCALE = 1 / 3, 8.0  # at most 3x finer (short waves), 8x coarser (long ones)
MIN_COARSE_PX = 16  # a coarse slice keeps at least this many pixels per side
BLEND_WIDTH = 0.25  # log-width of a pass's weight around TARGET_PX

Predict = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]


def adaptive_prediction(
    predict: Predict, field: np.ndarray, mask: np.ndarray
) -> dict[str, np.ndarray]:
    """The prediction of ``predict(field, mask)`` (dimensionless maps on the slice's grid,
    ``inference.predict_slice``), from the slice as it is and, when its wavelength lies outside
    the band, from the slice resampled towards it. Where a slice holds several wavelengths
    (soft fat around a stiffer liver), each pixel takes the passes by how near their own pixels
    its local wavelength is to ``TARGET_PX`` (``_blend``)."""
    scale = 1.0
    latest = predict(field, mask)
    passes = [(latest, 1.0)]
    for _ in range(MAX_PASSES - 1):
        estimate = wavelength_px(latest)  # in the pixels of the last pass's grid
        if estimate is None or BAND_PX[0] <= estimate <= BAND_PX[1]:
            break
        target = TARGET_PX if estimate > BAND_PX[1] else REFINED_PX
        wanted = float(np.clip(estimate * scale / target, MIN_SCALE, MAX_SCALE))
        wanted = min(wanted, min(mask.shape) / MIN_COARSE_PX)
        if abs(math.log(wanted / scale)) < math.log(1.25):
            break
        coarse_field, coarse_mask, shape = resample_slice(field, mask, wanted)
        if not coarse_mask.any():
            break
        scale, latest = wanted, predict(coarse_field, coarse_mask)
        back = back_to_grid(latest, shape, mask)
        # g = G*/(ρω²ΔyΔx): on pixels (H/h)(W/w) times larger, the fine grid's g is that much more
        area = (mask.shape[0] / shape[0]) * (mask.shape[1] / shape[1])
        back["log_magnitude"] = np.where(
            back["weight"] > 0, back["log_magnitude"] + math.log(area), 0.0
        )
        passes.append((back, math.sqrt(area)))
    return _blend(passes) if len(passes) > 1 else passes[0][0]


def _blend(passes: list[tuple[dict[str, np.ndarray], float]]) -> dict[str, np.ndarray]:
    """Per pixel, the passes weighted by exp(−½ (ln(λ_own / TARGET_PX) / BLEND_WIDTH)²), λ_own
    the pixel's wavelength in that pass's own pixels (2π sqrt(|g|) / scale): each region is
    read where its waves span the pixels the network reads best."""
    weights, sums = [], {key: 0.0 for key in ("log_magnitude", "phase", "variance")}
    for prediction, scale in passes:
        own = 2 * np.pi * np.exp(0.5 * prediction["log_magnitude"]) / scale
        score = np.exp(-0.5 * (np.log(own / TARGET_PX) / BLEND_WIDTH) ** 2)
        weight = prediction["weight"] * np.where(prediction["weight"] > 0, score + 1e-12, 0.0)
        weights.append(weight)
        for key in sums:
            sums[key] = sums[key] + weight * prediction[key]
    total = sum(weights)
    valid = total > 0
    safe = np.where(valid, total, 1.0)
    blended = {key: np.where(valid, value / safe, 0.0) for key, value in sums.items()}
    blended["weight"] = np.max([p["weight"] for p, _ in passes], axis=0) * valid
    return blended


def wavelength_px(prediction: dict[str, np.ndarray]) -> float | None:
    """The shear wavelength in the prediction's pixels from its median |g|: with g = G*/(ρω²Δ²)
    and c ≈ sqrt(|G*|/ρ), λ/Δ = 2π sqrt(|g|). None without any prediction."""
    valid = prediction["weight"] > 0
    if not valid.any():
        return None
    return float(2 * np.pi * np.sqrt(np.exp(np.median(prediction["log_magnitude"][valid]))))


def resample_slice(
    field: np.ndarray, mask: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """``field`` (C, H, W) and ``mask`` on a grid ``scale`` times coarser per axis: tissue
    values only (a mask-normalised Gaussian pre-filter of σ = scale/2 px against aliasing when
    coarsening), linear interpolation at the coarse pixel centres; the coarse mask is where at
    least half the footprint is tissue."""
    height, width = mask.shape
    shape = (max(2, round(height / scale)), max(2, round(width / scale)))
    weight = mask.astype(np.float64)
    sigma = 0.5 * scale if scale > 1 else 0.0
    smooth_weight = ndimage.gaussian_filter(weight, sigma) if sigma else weight
    coordinates = _centres(shape, (height, width))
    coarse_weight = ndimage.map_coordinates(smooth_weight, coordinates, order=1, mode="nearest")
    coarse_mask = coarse_weight >= 0.5
    order = 1 if scale > 1 else 3  # refining: cubic, a wave's curvature survives interpolation
    safe = np.where(coarse_weight > 1e-6, coarse_weight, 1.0)
    channels = []
    for component in field:
        parts = []
        for part in (component.real, component.imag):
            smooth = ndimage.gaussian_filter(part * weight, sigma) if sigma else part * weight
            parts.append(ndimage.map_coordinates(smooth, coordinates, order=order, mode="nearest"))
        channels.append((parts[0] + 1j * parts[1]) / safe * coarse_mask)
    return np.stack(channels), coarse_mask, shape


def back_to_grid(
    coarse: dict[str, np.ndarray], shape: tuple[int, int], mask: np.ndarray
) -> dict[str, np.ndarray]:
    """Coarse maps (on ``shape``) at the fine grid's pixel centres, weight-normalised linear
    interpolation (a coarse pixel without a prediction does not leak in), zero outside
    ``mask``."""
    coordinates = _centres(mask.shape, shape)
    weight = coarse["weight"]
    fine_weight = ndimage.map_coordinates(weight, coordinates, order=1, mode="nearest")
    valid = mask & (fine_weight > 0)
    safe = np.where(valid, fine_weight, 1.0)
    out = {"weight": np.where(valid, fine_weight, 0.0)}
    for key in ("log_magnitude", "phase", "variance"):
        values = ndimage.map_coordinates(weight * coarse[key], coordinates, order=1, mode="nearest")
        out[key] = np.where(valid, values / safe, 0.0)
    return out


def _centres(target: tuple[int, int], source: tuple[int, int]) -> np.ndarray:
    """The centres of ``target``'s pixels in ``source``'s pixel coordinates (same extent)."""
    axes = [(np.arange(t) + 0.5) * (s / t) - 0.5 for t, s in zip(target, source, strict=True)]
    rows, columns = np.meshgrid(*axes, indexing="ij")
    return np.stack([rows, columns])
