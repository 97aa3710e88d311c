"""Agreement between ground-truth and estimated stiffness maps: pure numpy, no I/O.

Conventions shared by every function here:

* Inputs are magnitudes |G*| in **kPa** (the evaluation converts the stores' Pa), arrays of one
  shape, 2D ``(y, x)`` or 3D ``(z, y, x)``. ``mask`` is the ground-truth tissue mask and
  ``labels`` the ground-truth region ids (0 outside tissue).
* **Evaluated pixels** are ``mask & isfinite(truth) & (truth > 0) & isfinite(estimate)``: tissue
  where the method returned an estimate. ``coverage`` is their share of the tissue pixels.
* Paired statistics (:func:`agreement`) take two 1-D vectors: pixels (pixel level) or ROI means
  (ROI level, one value per region of each sample).
* Sample statistics use ``ddof = 1``. An undefined value (too few values, zero variance) is NaN,
  never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

NAN = float("nan")
Z95 = 1.959964  # two-sided 95 % normal quantile of the Bland–Altman limits


def evaluated_pixels(truth: np.ndarray, estimate: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Boolean map of the evaluated pixels: tissue with a positive finite truth and an estimate."""
    truth, estimate = np.asarray(truth, float), np.asarray(estimate, float)
    with np.errstate(invalid="ignore"):
        return np.asarray(mask, bool) & np.isfinite(truth) & (truth > 0) & np.isfinite(estimate)


def pearson_r(truth: np.ndarray, estimate: np.ndarray) -> float:
    """Pearson correlation of the paired values; NaN for n < 2 or if either side is constant
    (spread below 10⁻⁶ of its magnitude: float32 round-off of a constant map is not signal)."""
    x, y = _paired(truth, estimate)
    if len(x) < 2 or _constant(x) or _constant(y):
        return NAN
    dx, dy = x - x.mean(), y - y.mean()
    return float(dx @ dy / np.sqrt((dx @ dx) * (dy @ dy)))


def r_squared(truth: np.ndarray, estimate: np.ndarray) -> float:
    """Coefficient of determination of the estimate as a predictor of the truth **about the
    identity line**: R² = 1 − Σ(e − t)² / Σ(t − t̄)². Unlike r², it is lowered by bias and scale
    error, and can be negative. NaN for n < 2 or a constant truth."""
    t, e = _paired(truth, estimate)
    if len(t) < 2 or _constant(t):
        return NAN
    total = float(((t - t.mean()) ** 2).sum())
    return 1.0 - float(((e - t) ** 2).sum()) / total


def bias(truth: np.ndarray, estimate: np.ndarray) -> tuple[float, float]:
    """Mean difference (estimate − truth) in kPa, and as a percentage of the mean truth:
    100 · mean(e − t) / mean(t). Positive: the method overestimates."""
    t, e = _paired(truth, estimate)
    if len(t) == 0:
        return NAN, NAN
    difference = float((e - t).mean())
    return difference, 100.0 * difference / float(t.mean())


def rmse(truth: np.ndarray, estimate: np.ndarray) -> float:
    """Root-mean-square error sqrt(mean((e − t)²)) in kPa."""
    t, e = _paired(truth, estimate)
    return float(np.sqrt(((e - t) ** 2).mean())) if len(t) else NAN


def mape(truth: np.ndarray, estimate: np.ndarray) -> float:
    """Mean absolute percentage error 100 · mean(|e − t| / t) in %, over values with t > 0."""
    t, e = _paired(truth, estimate)
    keep = t > 0
    return float(100.0 * (np.abs(e[keep] - t[keep]) / t[keep]).mean()) if keep.any() else NAN


def bland_altman(truth: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Bland–Altman agreement of paired values, all in kPa.

    ``mean_difference`` = mean(e − t) (the bias), ``sd`` = sample SD of e − t (ddof 1),
    ``lower`` / ``upper`` = mean_difference ∓ 1.96 sd (95 % limits of agreement). The plot's
    abscissa is (t + e) / 2. SD and limits are NaN for n < 2.
    """
    t, e = _paired(truth, estimate)
    difference = e - t
    mean = float(difference.mean()) if len(t) else NAN
    sd = float(difference.std(ddof=1)) if len(t) >= 2 else NAN
    return {"mean_difference": mean, "sd": sd, "lower": mean - Z95 * sd, "upper": mean + Z95 * sd}


def agreement(truth: np.ndarray, estimate: np.ndarray) -> dict[str, Any]:
    """Every paired statistic of two 1-D vectors (pixels or ROI means): ``n``, ``pearson_r``,
    ``r2``, ``bias_kpa``, ``bias_pct``, ``rmse_kpa``, ``mape_pct``, ``bland_altman`` (kPa)."""
    t, e = _paired(truth, estimate)
    bias_kpa, bias_pct = bias(t, e)
    return {
        "n": len(t),
        "pearson_r": pearson_r(t, e),
        "r2": r_squared(t, e),
        "bias_kpa": bias_kpa,
        "bias_pct": bias_pct,
        "rmse_kpa": rmse(t, e),
        "mape_pct": mape(t, e),
        "bland_altman": bland_altman(t, e),
    }


def pixel_agreement(truth: np.ndarray, estimate: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """:func:`agreement` over the evaluated pixels of one map, plus ``coverage`` (evaluated /
    tissue pixels, NaN for an empty mask)."""
    truth, estimate = np.asarray(truth, float), np.asarray(estimate, float)
    valid = evaluated_pixels(truth, estimate, mask)
    with np.errstate(invalid="ignore"):
        tissue = int((np.asarray(mask, bool) & np.isfinite(truth) & (truth > 0)).sum())
    result = agreement(truth[valid], estimate[valid])
    result["coverage"] = int(valid.sum()) / tissue if tissue else NAN
    return result


def coefficient_of_variation(values: np.ndarray) -> float:
    """Inter-pixel CV in %: 100 · SD(values, ddof 1) / mean(values), finite values only; NaN for
    fewer than 2 values or a non-positive mean."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2 or values.mean() <= 0:
        return NAN
    return float(100.0 * values.std(ddof=1) / values.mean())


def region_interiors(
    mask: np.ndarray, labels: np.ndarray, erosion_px: int = 1
) -> dict[int, np.ndarray]:
    """Each region id > 0 in the mask → its pixels eroded ``erosion_px`` times (cross-shaped
    structuring element; pixels outside the region count as outside, so the tissue edge is
    eroded too). Erosion keeps partial-volume pixels at boundaries out of ROI statistics."""
    mask, labels = np.asarray(mask, bool), np.asarray(labels)
    interiors = {}
    for label in np.unique(labels[mask]):
        if label <= 0:
            continue
        region = mask & (labels == label)
        if erosion_px > 0:
            region = ndimage.binary_erosion(region, iterations=erosion_px)
        interiors[int(label)] = region
    return interiors


def region_statistics(
    truth: np.ndarray,
    estimate: np.ndarray,
    mask: np.ndarray,
    labels: np.ndarray,
    erosion_px: int = 1,
    homogeneity_pct: float = 1.0,
    min_pixels: int = 5,
) -> list[dict[str, Any]]:
    """ROI means and inter-pixel CV of every region of one sample.

    The ROI of region L is its interior (:func:`region_interiors`). Per region: ``label``,
    ``n_pixels`` (ROI pixels), ``n_estimated`` (ROI pixels with an estimate), ``truth_kpa`` and
    ``estimate_kpa`` (ROI means; the estimate's over its estimated pixels), ``truth_cv_pct`` and
    ``cv_pct`` (:func:`coefficient_of_variation` of the ROI pixels), and ``homogeneous``: the
    ground truth varies by at most ``homogeneity_pct`` % CV in the ROI. Regions with fewer than
    ``min_pixels`` ROI pixels are left out; ``estimate_kpa`` and ``cv_pct`` are NaN with fewer
    than ``min_pixels`` estimated pixels.
    """
    truth, estimate = np.asarray(truth, float), np.asarray(estimate, float)
    rows = []
    for label, roi in region_interiors(mask, labels, erosion_px).items():
        if roi.sum() < min_pixels:
            continue
        values = estimate[roi]
        values = values[np.isfinite(values)]
        enough = len(values) >= min_pixels
        truth_cv = coefficient_of_variation(truth[roi])
        rows.append(
            {
                "label": label,
                "n_pixels": int(roi.sum()),
                "n_estimated": len(values),
                "truth_kpa": float(truth[roi].mean()),
                "estimate_kpa": float(values.mean()) if enough else NAN,
                "truth_cv_pct": truth_cv,
                "cv_pct": coefficient_of_variation(values) if enough else NAN,
                "homogeneous": bool(np.nan_to_num(truth_cv, nan=0.0) <= homogeneity_pct),
            }
        )
    return rows


def signed_distance(inside: np.ndarray, voxel_size_mm: Sequence[float]) -> np.ndarray:
    """Distance (mm) of each pixel centre to the boundary of ``inside``: positive inside,
    negative outside. The boundary lies half a voxel beyond the last pixel centre on either side,
    so the two pixels next to a straight boundary sit at ±h/2 (h = smallest voxel edge)."""
    inside = np.asarray(inside, bool)
    half = 0.5 * min(voxel_size_mm)
    inner = ndimage.distance_transform_edt(inside, sampling=voxel_size_mm)
    outer = ndimage.distance_transform_edt(~inside, sampling=voxel_size_mm)
    return np.where(inside, inner - half, half - outer)


def edge_profile(
    values: np.ndarray, distance: np.ndarray, pixels: np.ndarray, bin_mm: float, band_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Edge-spread function: mean of the finite ``values`` of ``pixels`` in distance bins of
    width ``bin_mm`` (edges at multiples of it, so a straight boundary's pixel rows fall one per
    bin) within ±``band_mm``. Returns (bin centres in mm, means), empty bins dropped."""
    values = np.asarray(values, float)
    keep = np.asarray(pixels, bool) & np.isfinite(values) & (np.abs(distance) <= band_mm)
    index = np.floor(distance[keep] / bin_mm).astype(int)
    if index.size == 0:
        return np.zeros(0), np.zeros(0)
    offset = index.min()
    sums = np.bincount(index - offset, weights=values[keep])
    counts = np.bincount(index - offset)
    filled = counts > 0
    centres = (np.arange(len(counts)) + offset + 0.5) * bin_mm
    return centres[filled], sums[filled] / counts[filled]


def plateaus(centres: np.ndarray, profile: np.ndarray, band_mm: float) -> tuple[float, float]:
    """(outside, inside) levels of an edge profile: mean of the bins beyond half the band on each
    side (the deepest bin if none is that far, e.g. inside a small inclusion)."""
    if len(centres) == 0:
        return NAN, NAN
    outer = centres <= -band_mm / 2
    inner = centres >= band_mm / 2
    low = profile[outer].mean() if outer.any() else profile[0]
    high = profile[inner].mean() if inner.any() else profile[-1]
    return float(low), float(high)


def edge_width_10_90(centres: np.ndarray, profile: np.ndarray, low: float, high: float) -> float:
    """10–90 % rise distance of an edge profile, in the units of ``centres``.

    The profile is normalised, e = (profile − low) / (high − low), so it rises from 0 outside to
    1 inside whatever the sign of the contrast. x₅₀ is the first bin, scanning from the outside,
    where e ≥ 0.5; x₁₀ is the crossing of 0.1 nearest before it and x₉₀ the crossing of 0.9
    nearest after it, each linearly interpolated between bin centres (anchoring at x₅₀ keeps
    noise in the plateaus from producing spurious crossings). Width = x₉₀ − x₁₀; NaN if a level
    is not crossed or low == high. A perfectly sharp step measures 0.8 bin.
    """
    if not (np.isfinite(low) and np.isfinite(high)) or high == low:
        return NAN
    x = np.asarray(centres, float)
    e = (np.asarray(profile, float) - low) / (high - low)
    rising = np.flatnonzero(e >= 0.5)
    if rising.size == 0 or rising[0] == 0:
        return NAN
    mid = rising[0]
    below = np.flatnonzero(e[:mid] < 0.1)
    above = np.flatnonzero(e[mid:] >= 0.9)
    if below.size == 0 or above.size == 0:
        return NAN
    first, last = below[-1], mid + above[0]
    return _interpolate(x, e, last - 1, 0.9) - _interpolate(x, e, first, 0.1)


def edge_widths(
    truth: np.ndarray,
    estimate: np.ndarray,
    mask: np.ndarray,
    labels: np.ndarray,
    voxel_size_mm: Sequence[float],
    band_px: float = 6.0,
    min_contrast: float = 0.2,
) -> list[dict[str, Any]]:
    """10–90 % edge width across every inclusion boundary of one sample, truth and estimate.

    The background is the largest region; every other region L is an inclusion. Its neighbour N
    is the most common region id in the one-pixel ring around L (inside the mask). Edge profiles
    (:func:`edge_profile`) of truth and estimate are taken over the pixels of L and N within
    ``band_px`` voxels of the boundary (:func:`signed_distance`), in bins of one voxel (the
    smallest edge), and their widths measured with :func:`edge_width_10_90` between the
    :func:`plateaus` of each profile. The estimate's width is NaN where it recovers less than
    ``min_contrast`` of the true step (|high − low| of the estimate < min_contrast ·
    |high − low| of the truth): no edge to delineate.

    Per edge: ``label``, ``neighbour``, ``truth_contrast_kpa`` and ``estimate_contrast_kpa``
    (inside − outside plateau), ``truth_width_mm``, ``width_mm`` (estimate) and ``width_px``.
    """
    mask, labels = np.asarray(mask, bool), np.asarray(labels)
    ids, counts = np.unique(labels[mask & (labels > 0)], return_counts=True)
    if len(ids) < 2:
        return []
    background = ids[np.argmax(counts)]
    step = float(min(voxel_size_mm))
    band = band_px * step
    edges = []
    for label in ids[ids != background]:
        inside = mask & (labels == label)
        neighbour = _neighbour(inside, mask, labels)
        if neighbour is None:
            continue
        pixels = inside | (mask & (labels == neighbour))
        distance = signed_distance(labels == label, voxel_size_mm)
        widths = [_edge_width(field, distance, pixels, step, band) for field in (truth, estimate)]
        (truth_width, truth_step), (width, step_estimate) = widths
        if not abs(step_estimate) >= min_contrast * abs(truth_step):
            width = NAN
        edges.append(
            {
                "label": int(label),
                "neighbour": int(neighbour),
                "truth_contrast_kpa": truth_step,
                "estimate_contrast_kpa": step_estimate,
                "truth_width_mm": truth_width,
                "width_mm": width,
                "width_px": width / step,
            }
        )
    return edges


def _edge_width(
    values: np.ndarray, distance: np.ndarray, pixels: np.ndarray, step: float, band: float
) -> tuple[float, float]:
    """(10–90 % width, inside − outside plateau) of one field across one boundary."""
    centres, profile = edge_profile(values, distance, pixels, step, band)
    low, high = plateaus(centres, profile, band)
    return edge_width_10_90(centres, profile, low, high), high - low


def _neighbour(inside: np.ndarray, mask: np.ndarray, labels: np.ndarray) -> int | None:
    """Most common region id > 0 in the one-pixel (cross) ring around ``inside``."""
    ring = ndimage.binary_dilation(inside) & ~inside & mask
    ids = labels[ring]
    ids = ids[ids > 0]
    if ids.size == 0:
        return None
    values, counts = np.unique(ids, return_counts=True)
    return int(values[np.argmax(counts)])


def _interpolate(x: np.ndarray, y: np.ndarray, i: int, level: float) -> float:
    """Where the segment from (x[i], y[i]) to (x[i + 1], y[i + 1]) reaches ``level``."""
    return float(x[i] + (level - y[i]) / (y[i + 1] - y[i]) * (x[i + 1] - x[i]))


def _constant(values: np.ndarray) -> bool:
    """True when the values vary by less than 10⁻⁶ of their largest magnitude."""
    return bool(np.ptp(values) <= 1e-6 * np.abs(values).max())


def _paired(truth: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flattened float vectors of the pairs where both values are finite."""
    t = np.asarray(truth, float).ravel()
    e = np.asarray(estimate, float).ravel()
    if t.shape != e.shape:
        raise ValueError(f"truth and estimate differ in size: {t.shape} vs {e.shape}")
    keep = np.isfinite(t) & np.isfinite(e)
    return t[keep], e[keep]
