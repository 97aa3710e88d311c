"""``dime-pipeline invert`` plausibility checks on users' data: the errors (one line, exit 2, no
output) and the warnings (logged, and recorded in the JSON summary beside OUT)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from test_invert_cli import PIXDIM, invert, save_nifti, volume_xyz, wave_xy

from dime_pipeline.inversion import wave_images
from dime_pipeline.userdata.checks import (
    MAX_USER_OFFSETS,
    harmonic_fraction,
    offsets_axis_doubt,
)

WAVES = wave_images(volume_xyz((24, 20)), n_offsets=4)  # (X, Y, Z=2, T=4)


def fails(tmp_path: Path, capsys, *argv: object) -> str:
    before = sorted(tmp_path.rglob("*"))
    assert invert(*argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dime-pipeline invert: error: "), lines
    assert sorted(tmp_path.rglob("*")) == before
    return lines[0]


def summary_of(out: Path) -> dict:
    return json.loads(out.with_name(out.name.removesuffix(".nii.gz") + ".json").read_text())


def run_ok(source: Path, out: Path, *extra: object) -> dict:
    assert invert(source, "--method", "di", *extra, "--out", out) == 0
    return summary_of(out)


# --- phase offsets: more than 32 is an error; offsets on another axis a warning ---------------


def test_more_than_32_offsets_is_an_error_and_32_is_not(tmp_path, capsys):
    field = volume_xyz((24, 20))
    too_many = save_nifti(tmp_path / "many.nii", wave_images(field, MAX_USER_OFFSETS + 1))
    argv = [too_many, "--method", "di", "--frequency-hz", 60, "--out", tmp_path / "g.nii.gz"]
    line = fails(tmp_path, capsys, *argv)
    assert f"{too_many}: last axis has 33 phase offsets, more than 32" in line
    assert MAX_USER_OFFSETS == 32
    enough = save_nifti(tmp_path / "enough.nii", wave_images(field, MAX_USER_OFFSETS))
    assert invert(enough, "--method", "di", "--frequency-hz", 60, "--out", tmp_path / "h.nii") == 0


def test_harmonic_fraction_of_offsets_noise_and_a_spatial_axis():
    rng = np.random.default_rng(1)
    assert harmonic_fraction(WAVES, -1) == pytest.approx(1.0, abs=1e-9)
    noise = rng.standard_normal((40, 40, 12))
    assert harmonic_fraction(noise, -1) == pytest.approx(2 / 11, rel=0.1)
    assert harmonic_fraction(noise * 1e200, -1) == pytest.approx(harmonic_fraction(noise, -1))
    assert np.isnan(harmonic_fraction(np.ones((8, 8, 4)), -1))


def swapped_offsets(n_slices: int) -> np.ndarray:
    """(X, Y, T=4, Z): the offsets on axis 2 and a slice stack on the last axis, whose pattern
    along z is mostly two cycles (DFT bin 2) with a little of one cycle (bin 1)."""
    z = np.arange(n_slices)
    pattern = np.cos(2 * np.pi * 2 * z / n_slices) + 0.3 * np.cos(2 * np.pi * z / n_slices)
    field = wave_xy((40, 36), 3000 + 400j, 30)[..., None] * pattern
    return np.swapaxes(wave_images(field, 4), 2, 3)


def test_offsets_axis_doubt_by_content_and_by_shape():
    assert offsets_axis_doubt(WAVES) is None
    # 16 true offsets beside 4 slices: long, but the last axis is plainly harmonic
    field = np.stack([wave_xy((30, 30), 2000 + 200j, a) for a in (0, 40, 80, 120)], axis=-1)
    assert offsets_axis_doubt(wave_images(field, 16)) is None
    # content: axis 2 holds a harmonic over 4 samples, the last axis barely (≈ 8 %)
    doubt = offsets_axis_doubt(swapped_offsets(6))
    assert doubt is not None and doubt.startswith("the phase offsets may sit on axis 2 (length 4)")
    # shape: 12 "offsets" of noise beside an axis of 5, neither harmonic
    noise = np.random.default_rng(2).standard_normal((24, 20, 5, 12))
    assert "axis 2 (length 5), not on the last axis (length 12)" in offsets_axis_doubt(noise)


def test_offsets_on_a_spatial_axis_is_a_warning_recorded_in_the_summary(tmp_path, caplog):
    source = save_nifti(tmp_path / "swapped.nii", swapped_offsets(6))
    summary = run_ok(source, tmp_path / "g.nii.gz", "--frequency-hz", 30)
    found = [w for w in summary["warnings"] if "the phase offsets may sit on axis 2" in w]
    assert len(found) == 1 and found[0].startswith(f"{source}: ")
    assert any("the phase offsets may sit on axis 2" in r.getMessage() for r in caplog.records)


# --- voxel size: a bare pixdim of 1 with no unit ------------------------------------------------


def unitless_nifti(path: Path, pixdim: tuple[float, float] = (1.0, 1.0), unit: str = "unknown"):
    image = nib.Nifti1Image(WAVES, np.diag([*pixdim, 1.0, 1.0]))
    image.header.set_xyzt_units(unit)
    nib.save(image, path)
    return path


def test_pixdim_1_without_a_unit_is_a_warning_recorded_in_the_summary(tmp_path):
    source = unitless_nifti(tmp_path / "bare.nii")
    summary = run_ok(source, tmp_path / "g.nii.gz", "--frequency-hz", 60)
    assert summary["voxel_size_source"] == "assumed 1 mm: NIfTI pixdim 1 with no spatial unit"
    assert summary["voxel_size_mm"] == [1.0, 1.0]
    assert [w for w in summary["warnings"] if "pixdim is exactly 1 with no spatial unit" in w]


@pytest.mark.parametrize(
    ("pixdim", "unit", "extra", "source_text"),
    [
        ((1.0, 1.0), "unknown", ["--voxel-size-mm", "1.0"], "--voxel-size-mm"),
        ((1.0, 1.0), "mm", [], "NIfTI header (pixdim)"),
        ((1.0, 1.5), "unknown", [], "NIfTI header (pixdim)"),
    ],
    ids=["given", "unit-mm", "not-both-1"],
)
def test_pixdim_warning_only_for_a_bare_default(tmp_path, pixdim, unit, extra, source_text):
    source = unitless_nifti(tmp_path / "in.nii", pixdim, unit)
    summary = run_ok(source, tmp_path / "g.nii.gz", "--frequency-hz", 60, *extra)
    assert summary["voxel_size_source"] == source_text
    assert not [w for w in summary["warnings"] if "pixdim" in w]


# --- fewer than 3 wavelengths across the mask ---------------------------------------------------


def complex_nifti(path: Path, field: np.ndarray) -> Path:
    return save_nifti(path, np.stack([field.real, field.imag], axis=-1))


def test_fewer_than_3_wavelengths_is_a_warning_recorded_in_the_summary(tmp_path):
    # 20 kPa at 60 Hz: λ = √(20e3/1000)/60 = 74.5 mm on a 24 × 20 px (29 × 36 mm) field of view
    source = complex_nifti(tmp_path / "stiff.nii", wave_xy((24, 20), 20e3 + 1e3j, 30))
    summary = run_ok(source, tmp_path / "g.nii.gz", "--frequency-hz", 60, "--layout", "complex")
    wavelength_mm = np.sqrt(summary["regions"]["mask"]["abs_g_kpa"]["median"]) * 1e3 / 60
    expected = max(24 * PIXDIM[0], 20 * PIXDIM[1]) / wavelength_mm
    assert summary["wavelengths_across_mask"] == pytest.approx(expected, rel=1e-6)
    assert summary["wavelengths_across_mask"] < 1
    assert [w for w in summary["warnings"] if "wavelengths of the median |G*|" in w]


def test_a_wide_field_of_view_gives_no_warning(tmp_path):
    # 2 kPa at 60 Hz: λ = 23.6 mm; 64 × 64 px of 1.2 × 1.8 mm span 4.9 wavelengths
    source = complex_nifti(tmp_path / "soft.nii", wave_xy((64, 64), 2000 + 200j, 30))
    summary = run_ok(source, tmp_path / "g.nii.gz", "--frequency-hz", 60, "--layout", "complex")
    assert summary["wavelengths_across_mask"] == pytest.approx(115.2 / 23.6, rel=0.05)
    assert summary["warnings"] == []


def test_an_unusual_frequency_is_recorded_in_the_summary(tmp_path):
    source = complex_nifti(tmp_path / "u.nii", wave_xy((64, 64), 2000 + 200j, 30))
    summary = run_ok(source, tmp_path / "g.nii.gz", "--frequency-hz", 2000, "--layout", "complex")
    assert [w for w in summary["warnings"] if "--frequency-hz 2000 Hz is unusual for MRE" in w]


# --- option errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        (["--vmax", "5"], "--vmax sets the colour scale of --png: give --png too"),
        (["--png", "{tmp}/p.png", "--vmax", "-1"], "--vmax must be a positive number, got -1.0"),
        (["--mat-variable", "U"], "--mat-variable is for a MATLAB .mat INPUT only"),
        (["--confidence-mask", "{tmp}/cm.txt"], "output name must end with .nii or .nii.gz"),
        (["--confidence-mask", "{tmp}/g.nii"], "the same output as"),
    ],
    ids=["vmax-without-png", "negative-vmax", "mat-variable-for-nifti", "mask-suffix", "twice"],
)
def test_option_errors(tmp_path, capsys, extra, phrase):
    source = save_nifti(tmp_path / "in.nii", WAVES)
    extra = [a.format(tmp=tmp_path) for a in extra]
    argv = [source, "--method", "di", "--frequency-hz", 60, *extra]
    assert phrase in fails(tmp_path, capsys, *argv, "--out", tmp_path / "g.nii.gz")
