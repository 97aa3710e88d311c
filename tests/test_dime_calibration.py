"""Calibrated DIME confidence (``dime.calibration``): the fit recovers a known miscalibration
(scale and tail), coverage means what it says, the model file keeps the temperature and inference
applies it, and calibrating the shipped model on a small synthetic set brings its bands' coverage
on a second, unseen set within 5 points of nominal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_dime import make_pack

from dime_pipeline.cli import main
from dime_pipeline.datasets import Pack
from dime_pipeline.dime.calibration import (
    LEVELS,
    band_halfwidth,
    coverage,
    curve,
    fit_calibration,
    residuals,
)
from dime_pipeline.dime.inference import invert_dime
from dime_pipeline.dime.model_file import default_model_path, load_model
from dime_pipeline.errors import UserError
from dime_pipeline.inversion.methods import inverter
from dime_pipeline.inversion.packs import invert_rows


def test_band_halfwidths_are_the_two_sided_quantiles():
    assert band_halfwidth(0.68) == pytest.approx(0.9945, abs=1e-3)
    assert band_halfwidth(0.95) == pytest.approx(1.95996, abs=1e-4)
    assert band_halfwidth(0.95, 2.0) == pytest.approx(4.303, abs=1e-3)  # t tables


@pytest.mark.parametrize("true_scale", [0.4, 1.0, 2.5])
@pytest.mark.parametrize("true_dof", [2.5, None])
def test_fit_recovers_a_known_miscalibration(true_scale, true_dof):
    """Errors drawn as true_scale · σ_predicted times a standard Gaussian or t(2.5): T within
    3 %, ν exact for t errors (Gaussian ones may take ν ≥ 10, indistinguishable here), and the
    calibrated bands cover each level within 1 point."""
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.05, 0.5, 200_000)
    unit = (
        rng.standard_normal(sigma.size)
        if true_dof is None
        else rng.standard_t(true_dof, sigma.size)
    )
    residual = true_scale * sigma * unit
    scale, dof = fit_calibration(residual, sigma)
    assert scale == pytest.approx(true_scale, rel=0.03)
    assert dof == true_dof if true_dof is not None else (dof is None or dof >= 10)
    for level, observed in curve(residual, sigma, scale, dof).items():
        assert observed == pytest.approx(float(level), abs=0.01)


def test_coverage_counts_the_band_edges_and_refuses_nothing_to_fit():
    sigma = np.ones(4)
    residual = np.array([0.0, 0.5, -1.9, 3.0])
    assert coverage(residual, sigma, 0.95) == 0.75  # |r| ≤ 1.96 for three of four
    assert coverage(residual, sigma, 0.95, scale=2.0) == 1.0
    with pytest.raises(UserError, match="no pixels"):
        fit_calibration(np.array([]), np.array([]))


def test_residuals_skip_pixels_without_an_estimate():
    estimate = np.array([2.0, np.nan, 4.0, 1.0])
    confidence = np.array([np.exp(-0.1), np.nan, np.exp(-0.2), 1.0])  # the last: σ = 0
    truth = np.array([1.0, 1.0, 4.0, 1.0])
    residual, sigma = residuals(estimate, confidence, truth, np.ones(4, bool))
    np.testing.assert_allclose(residual, [np.log(2.0), 0.0])
    np.testing.assert_allclose(sigma, [0.1, 0.2])


def _coverage_on(pack_path: Path, model_path: Path) -> dict[str, float]:
    pack = Pack(pack_path)
    masks = pack.column("mask").astype(bool)
    invert, _ = inverter("dime", model_path)
    modulus, confidence, _ = invert_rows(pack, invert, "dime", masks)
    residual, sigma = residuals(modulus, confidence, pack.column("modulus"), masks)
    return curve(residual, sigma, dof=load_model(model_path).band_dof)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The shipped model calibrated on one synthetic set (the `calibrate` command), and a second
    set drawn from the same distribution with other seeds. 64 rows each: with 32, two seeds'
    sets differed by up to 6 points of 68 % coverage under one calibration (sampling spread)."""
    folder = tmp_path_factory.mktemp("calibration")
    val = make_pack(folder / "val.zarr", n=64, shape=(48, 48), seed=1)
    test = make_pack(folder / "test.zarr", n=64, shape=(48, 48), seed=2)
    out = folder / "calibrated.pt"
    argv = ["--quiet", "calibrate", "--model", str(default_model_path())]
    assert main([*argv, "--val", str(val), "--out", str(out)]) == 0
    return out, val, test


def test_calibrated_bands_cover_an_unseen_set_within_5_points(calibrated):
    out, _, test = calibrated
    observed = _coverage_on(test, out)
    for level in ("0.68", "0.95"):
        assert observed[level] == pytest.approx(float(level), abs=0.05)


def test_the_model_file_keeps_the_temperature_and_inference_applies_it(calibrated):
    out, val, _ = calibrated
    record = torch.load(out, weights_only=True)["calibration"]
    assert set(record["coverage_after"]) == {f"{level:g}" for level in LEVELS}
    assert record["fitted_on"] == [str(val)]
    shipped, scaled = load_model(default_model_path()), load_model(out)
    assert scaled.log_std_scale == pytest.approx(record["log_std_scale"])
    assert scaled.band_dof == record["band_dof"]
    field = np.exp(-0.5j * np.arange(40))[None, None, :] * np.ones((1, 40, 40))
    plain = invert_dime(field, None, 60.0, 1.5e-3, model=shipped)
    tempered = invert_dime(field, None, 60.0, 1.5e-3, model=scaled)
    np.testing.assert_allclose(
        tempered["log_std"], plain["log_std"] * record["log_std_scale"] / shipped.log_std_scale
    )
    np.testing.assert_array_equal(tempered["modulus"], plain["modulus"])


def test_a_broken_temperature_is_refused(tmp_path, calibrated):
    payload = torch.load(calibrated[0], weights_only=True)
    payload["calibration"]["log_std_scale"] = float("nan")
    torch.save(payload, tmp_path / "broken.pt")
    with pytest.raises(UserError, match="log_std_scale"):
        load_model(tmp_path / "broken.pt")
