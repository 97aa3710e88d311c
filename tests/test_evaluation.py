"""Evaluation metrics and fibrosis staging against values computed by hand on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from dime_pipeline.evaluation import metrics, resolution
from dime_pipeline.evaluation.evaluate import dumps
from dime_pipeline.evaluation.staging import (
    NO_STAGE,
    STAGES,
    confusion_matrix,
    fibrosis_stage,
    stage_agreement,
)

# Four pixels, kPa: differences e − t = (1, −1, 1, 1).
TRUTH = np.array([2.0, 4.0, 6.0, 8.0])
ESTIMATE = np.array([3.0, 3.0, 7.0, 9.0])
SIGMA_TO_10_90 = 2 * 1.2815516  # 10–90 % rise of a Gaussian-blurred step, in units of σ


def test_paired_metrics_by_hand() -> None:
    # t̄ = 5, ē = 5.5; Σ(dt·de) = 22, Σdt² = 20, Σde² = 27; Σ(e − t)² = 4.
    result = metrics.agreement(TRUTH, ESTIMATE)
    assert result["n"] == 4
    assert result["pearson_r"] == pytest.approx(22 / math.sqrt(20 * 27))
    assert result["r2"] == pytest.approx(1 - 4 / 20)
    assert result["bias_kpa"] == pytest.approx(0.5)
    assert result["bias_pct"] == pytest.approx(10.0)  # 0.5 / 5
    assert result["rmse_kpa"] == pytest.approx(1.0)
    assert result["mape_pct"] == pytest.approx(100 * (1 / 2 + 1 / 4 + 1 / 6 + 1 / 8) / 4)


def test_bland_altman_by_hand() -> None:
    # d = (1, −1, 1, 1): mean 0.5, squared deviations 0.25 + 2.25 + 0.25 + 0.25 = 3, SD = 1.
    ba = metrics.bland_altman(TRUTH, ESTIMATE)
    assert ba["mean_difference"] == pytest.approx(0.5)
    assert ba["sd"] == pytest.approx(1.0)
    assert ba["lower"] == pytest.approx(0.5 - 1.959964)
    assert ba["upper"] == pytest.approx(0.5 + 1.959964)
    single = metrics.bland_altman([2.0], [3.0])
    assert single["mean_difference"] == 1.0 and math.isnan(single["upper"])


def test_pixel_selection_and_coverage() -> None:
    """Only tissue pixels with a finite estimate count; outside the mask nothing does."""
    truth = np.array([[2.0, 4.0, 6.0], [8.0, 5.0, 0.0]])
    estimate = np.array([[3.0, 3.0, 7.0], [9.0, np.nan, 100.0]])
    mask = np.array([[True, True, True], [True, True, False]])
    result = metrics.pixel_agreement(truth, estimate, mask)
    assert result["n"] == 4
    assert result["coverage"] == pytest.approx(4 / 5)
    assert result["rmse_kpa"] == pytest.approx(1.0)


def test_undefined_values_are_nan() -> None:
    constant = np.full(10, 3.0, np.float32) * np.float32(1.0000001)  # float32 round-off
    assert math.isnan(metrics.pearson_r(constant, np.linspace(1, 2, 10)))
    assert math.isnan(metrics.r_squared(constant, np.linspace(1, 2, 10)))
    assert math.isnan(metrics.pearson_r([1.0], [1.0]))
    empty = metrics.agreement([], [])
    assert empty["n"] == 0 and math.isnan(empty["bias_kpa"]) and math.isnan(empty["mape_pct"])
    assert dumps(empty).count("null") >= 6  # strict JSON: NaN → null


def test_coefficient_of_variation() -> None:
    assert metrics.coefficient_of_variation([9.0, 10.0, 11.0]) == pytest.approx(10.0)
    assert metrics.coefficient_of_variation([9.0, np.nan, 11.0]) == pytest.approx(
        100 * math.sqrt(2) / 10
    )
    assert math.isnan(metrics.coefficient_of_variation([5.0]))


def test_region_statistics_erode_and_average() -> None:
    """A 6 × 6 region eroded by one pixel leaves its 4 × 4 interior; the rim is ignored."""
    mask = np.ones((6, 6), bool)
    labels = np.ones((6, 6), np.int16)
    truth = np.full((6, 6), 4.0)
    estimate = np.full((6, 6), 100.0)  # rim: wildly wrong, must not count
    interior = np.array([[3.0, 5.0, 3.0, 5.0]] * 4)
    estimate[1:-1, 1:-1] = interior
    (region,) = metrics.region_statistics(truth, estimate, mask, labels, erosion_px=1)
    assert region["n_pixels"] == 16 and region["n_estimated"] == 16
    assert region["truth_kpa"] == pytest.approx(4.0)
    assert region["estimate_kpa"] == pytest.approx(4.0)
    assert region["cv_pct"] == pytest.approx(100 * interior.std(ddof=1) / 4.0)
    assert region["truth_cv_pct"] == pytest.approx(0.0)
    assert region["homogeneous"]


def _straight_edge(n: int = 48, split: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background (label 1, 2 kPa) left, a smaller 'inclusion' (label 2, 6 kPa) right."""
    labels = np.ones((n, n), np.int16)
    labels[:, split:] = 2
    truth = np.where(labels == 2, 6.0, 2.0)
    return np.ones((n, n), bool), labels, truth


def test_edge_width_of_a_sharp_step_is_0p8_voxel() -> None:
    mask, labels, truth = _straight_edge()
    (edge,) = metrics.edge_widths(truth, truth, mask, labels, (1.5, 1.5))
    assert (edge["label"], edge["neighbour"]) == (2, 1)
    assert edge["width_px"] == pytest.approx(0.8)
    assert edge["truth_width_mm"] == pytest.approx(0.8 * 1.5)
    assert edge["estimate_contrast_kpa"] == pytest.approx(4.0)


@pytest.mark.parametrize("sigma", [1.0, 1.5])
def test_edge_width_of_a_blurred_step(sigma: float) -> None:
    """Gaussian blur σ widens a step to 2·1.2816·σ (10–90 %); bins of one voxel and linear
    interpolation stay within 6 %."""
    mask, labels, truth = _straight_edge()
    blurred = ndimage.gaussian_filter(truth, sigma, mode="nearest")
    (edge,) = metrics.edge_widths(truth, blurred, mask, labels, (2.0, 2.0))
    assert edge["width_px"] == pytest.approx(SIGMA_TO_10_90 * sigma, rel=0.06)
    assert edge["width_mm"] == pytest.approx(2.0 * edge["width_px"])


def test_edge_width_of_a_soft_disc_and_lost_contrast() -> None:
    """Contrast sign does not matter; an estimate with almost no step has no edge width."""
    y, x = np.indices((48, 48))
    labels = np.where((y - 24) ** 2 + (x - 24) ** 2 < 12**2, 2, 1).astype(np.int16)
    mask = np.ones_like(labels, bool)
    truth = np.where(labels == 2, 1.5, 5.0)  # soft inclusion
    blurred = ndimage.gaussian_filter(truth, 1.5)
    (edge,) = metrics.edge_widths(truth, blurred, mask, labels, (1.0, 1.0))
    assert edge["width_px"] == pytest.approx(SIGMA_TO_10_90 * 1.5, rel=0.1)
    assert edge["estimate_contrast_kpa"] < 0
    flat = 5.0 - 0.1 * (labels == 2)  # 0.1 of a 3.5 kPa step: below the 20 % contrast floor
    (lost,) = metrics.edge_widths(truth, flat, mask, labels, (1.0, 1.0))
    assert math.isnan(lost["width_mm"])
    assert metrics.edge_widths(truth, truth, mask, np.ones_like(labels), (1.0, 1.0)) == []


def test_edge_width_in_3d() -> None:
    z, y, x = np.indices((24, 24, 24))
    labels = np.where((z - 12) ** 2 + (y - 12) ** 2 + (x - 12) ** 2 < 8**2, 2, 1)
    truth = np.where(labels == 2, 6.0, 2.0)
    blurred = ndimage.gaussian_filter(truth, 1.0)
    (edge,) = metrics.edge_widths(truth, blurred, np.ones_like(labels, bool), labels, (1, 1, 1))
    assert edge["width_px"] == pytest.approx(SIGMA_TO_10_90, rel=0.15)


def test_boundary_distance_by_hand() -> None:
    """A 2-px stripe of region 2 in region 1, tissue cut by the mask on the right: distances
    count pixel steps to another region or outside the tissue; the image border is no boundary."""
    labels = np.ones((5, 8), np.int16)
    labels[:, 3:5] = 2
    mask = np.ones_like(labels, bool)
    mask[:, 7] = False
    distance = resolution.boundary_distance_px(mask, labels)
    np.testing.assert_array_equal(distance[2], [3, 2, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(distance[:, 0], 3)  # the border row and column included
    z, y, x = np.indices((9, 9, 9))
    ball = (z - 4) ** 2 + (y - 4) ** 2 + (x - 4) ** 2 <= 9
    in_3d = resolution.boundary_distance_px(np.ones_like(ball), ball.astype(int) + 1)
    assert in_3d[4, 4, 4] == pytest.approx(math.sqrt(10))  # to (1, 3, 4), just outside
    assert in_3d[4, 4, 1] == 1 and in_3d[4, 4, 0] == 1


def test_a_blurred_map_loses_its_r_in_the_boundary_band() -> None:
    """Blur (σ 1.5 px) costs r only near boundaries: exact there, r returns to almost 1; exact
    elsewhere, it stays where the blur put it (benchmarks/dime_targets.py reports this split)."""
    y, x = np.indices((64, 64))
    labels = np.where((y - 32) ** 2 + (x - 32) ** 2 < 10**2, 2, 1)
    labels[(y - 10) ** 2 + (x - 14) ** 2 < 4**2] = 3
    truth = np.choose(labels - 1, [2.0, 6.0, 1.0])
    blurred = ndimage.gaussian_filter(truth, 1.5)
    near = resolution.boundary_distance_px(np.ones_like(labels, bool), labels).ravel() <= 2
    r = metrics.pearson_r(truth, blurred)
    r_near_exact = metrics.pearson_r(truth.ravel(), np.where(near, truth.ravel(), blurred.ravel()))
    r_far_exact = metrics.pearson_r(truth.ravel(), np.where(near, blurred.ravel(), truth.ravel()))
    assert r < 0.97 and r_near_exact > 0.998 and abs(r_far_exact - r) < 0.001


def test_region_width_by_hand() -> None:
    """Stripes of 2, 3 and 6 px and a disc of radius 5 in a background: each pixel reads the
    width of the structure it lies in (2·deepest distance: even n reads n, odd n + 1), the
    background its inscribed diameter, outside the mask 0."""
    labels = np.ones((40, 40), np.int16)
    labels[:, 4:6], labels[:, 10:13], labels[:, 20:26] = 2, 3, 4
    y, x = np.indices(labels.shape)
    labels[(y - 20) ** 2 + (x - 33) ** 2 <= 25] = 5
    mask = np.ones_like(labels, bool)
    mask[:, -1] = False
    width = resolution.region_width_px(mask, labels)
    assert (width[:, 4:6] == 2).all() and (width[:, 10:13] == 4).all()
    assert (width[:, 20:26] == 6).all()
    # the disc (r² ≤ 25): its centre lies √26 from the nearest pixel outside it
    assert width[20, 33] == pytest.approx(2 * math.sqrt(26))
    assert (width[:, -1] == 0).all()
    # the background's separate pieces read their own widths; the image border is no boundary
    assert (width[:, 6:10] == 4).all() and (width[:, 13:20] == 8).all()
    assert (width[:, 0:4] == 8).all()


def test_blur_in_mask_keeps_the_outside_out() -> None:
    """A constant inside the mask stays that constant under any blur (normalised over the
    mask), NaN outside it; a step is smoothed over about σ."""
    mask = np.zeros((30, 30), bool)
    mask[5:25, 5:25] = True
    flat = resolution.blur_in_mask(np.where(mask, 3.0, 100.0), mask, [2.0, 2.0])
    np.testing.assert_allclose(flat[mask], 3.0)
    assert np.isnan(flat[~mask]).all()
    step = np.where(np.indices(mask.shape)[1] < 15, 1.0, 2.0)
    blurred = resolution.blur_in_mask(step, mask, [0.0, 2.0])
    assert blurred[15, 14] == pytest.approx(1.5, abs=0.1) and blurred[15, 6] < 1.01


def test_fibrosis_stage_cutoffs() -> None:
    values = [2.0, 2.5, 2.89, 2.9, 3.49, 3.5, 3.99, 4.0, 4.99, 5.0, 12.0, np.nan, -1.0]
    expected = [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, NO_STAGE, NO_STAGE]
    assert fibrosis_stage(values).tolist() == expected
    assert len(STAGES) == 5


def test_confusion_matrix_and_agreement_by_hand() -> None:
    truth = fibrosis_stage([2.0, 3.0, 3.7, 4.5, 6.0, 6.0])  # 0, 1, 2, 3, 4, 4
    estimate = fibrosis_stage([2.2, 3.6, 3.8, 4.1, 4.5, np.nan])  # 0, 2, 2, 3, 3, none
    matrix = confusion_matrix(truth, estimate)
    expected = np.zeros((5, 5), int)
    for t, e in [(0, 0), (1, 2), (2, 2), (3, 3), (4, 3)]:  # the unstaged pair is dropped
        expected[t, e] += 1
    np.testing.assert_array_equal(matrix, expected)
    # p_o = 3/5; marginals truth (1,1,1,1,1), estimate (1,0,2,2,0): p_e = 5/25; κ = 0.4/0.8.
    stats = stage_agreement(matrix)
    assert stats == pytest.approx({"n": 5, "exact": 0.6, "within_one": 1.0, "kappa": 0.5})
    assert math.isnan(stage_agreement(np.zeros((5, 5)))["kappa"])
