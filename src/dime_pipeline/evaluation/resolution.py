"""Where a stiffness map's error sits, in terms of resolution: pure numpy, no I/O.

A wave inversion resolves a fraction of a shear wavelength, so its correlation with a piecewise
constant truth is lost at region boundaries and in structures not much wider than that. These
helpers split a map's error by that geometry (``benchmarks/dime_targets.py`` reports them) and
give the reference a target can be read against: the truth itself blurred at a fraction of the
wavelength. Conventions as in :mod:`~dime_pipeline.evaluation.metrics` (magnitudes, one shape,
2D or 3D, ``labels`` the region ids).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def _regions(mask: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tissue's labels with outside the tissue as a region of its own (-1), and its ids."""
    mask, labels = np.asarray(mask, bool), np.asarray(labels)
    tissue_labels = np.where(mask, labels, -1)
    return tissue_labels, np.unique(tissue_labels[mask])


def _inside_distance(region: np.ndarray) -> np.ndarray:
    """Each pixel's distance to the nearest pixel outside ``region``; the image border, padded
    as inside, is not a boundary of the tissue."""
    inside = ndimage.distance_transform_edt(np.pad(region, 1, constant_values=True))
    return inside[(slice(1, -1),) * region.ndim]


def boundary_distance_px(mask: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Distance (pixel edges, between centres) of each tissue pixel to the nearest pixel of
    another region or outside the tissue: 1 next to a boundary, 0 outside the mask.

    Splits a map's error into what a sharper boundary would fix and what it would not (a wave
    inversion's resolution is a few pixels; region interiors lie beyond it)."""
    tissue_labels, ids = _regions(mask, labels)
    distance = np.zeros(tissue_labels.shape)
    for label in ids:
        region = tissue_labels == label
        distance[region] = _inside_distance(region)[region]
    return distance


def region_width_px(mask: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Width (px) of the structure each tissue pixel lies in, 0 outside the mask: twice the
    deepest :func:`boundary_distance_px` over the connected part of its region. A stripe n
    pixels across reads n (even n) or n + 1 (odd n); a vessel, a septum or a thin inclusion reads
    its own width, a large region its inscribed diameter."""
    tissue_labels, ids = _regions(mask, labels)
    width = np.zeros(tissue_labels.shape)
    for label in ids:
        parts, count = ndimage.label(tissue_labels == label)
        inside = parts > 0
        depth = _inside_distance(inside)
        deepest = np.asarray(ndimage.maximum(depth, parts, index=np.arange(1, count + 1)))
        width[inside] = 2 * deepest[parts[inside] - 1]
    return width


def blur_in_mask(values: np.ndarray, mask: np.ndarray, sigma_px: Sequence[float]) -> np.ndarray:
    """``values`` as a map of limited resolution sees them: a Gaussian of σ (px, per axis)
    normalised over the mask, so the outside does not leak in; NaN outside the mask."""
    mask = np.asarray(mask, bool)
    weight = ndimage.gaussian_filter(mask.astype(float), sigma_px)
    blurred = ndimage.gaussian_filter(np.where(mask, np.asarray(values, float), 0.0), sigma_px)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mask, blurred / weight, np.nan)
