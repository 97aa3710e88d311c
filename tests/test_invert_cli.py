"""``dime-pipeline invert``: NIfTI/.npy/store round trips, geometry, offset removal, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from dime_pipeline.cli import main
from dime_pipeline.inversion import direct_inversion, wave_images
from dime_pipeline.store import Sample, write_sample

FREQUENCY = 60.0
OMEGA = 2 * np.pi * FREQUENCY
PIXDIM = (1.2, 1.8, 5.0)  # mm along the NIfTI axes (i, j, k): anisotropic on purpose
AFFINE = np.array(
    [
        [0.0, -1.8, 0.0, 40.0],
        [1.2, 0.0, 0.0, -20.0],
        [0.0, 0.0, 5.0, 7.5],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
MODULI = (2000 + 300j, 4500 + 700j)  # one per slice, to catch mixed-up slices


def wave_xy(shape_xy: tuple[int, int], modulus: complex, angle_deg: float) -> np.ndarray:
    """A plane wave exp(-i k n·r) in NIfTI array order (i along x, j along y), PIXDIM spacing."""
    k = OMEGA * np.sqrt(1000.0 / modulus)
    i, j = np.indices(shape_xy)
    x, y = i * PIXDIM[0] * 1e-3, j * PIXDIM[1] * 1e-3
    angle = np.deg2rad(angle_deg)
    return np.exp(-1j * k * (np.cos(angle) * x + np.sin(angle) * y))


def volume_xyz(shape_xy=(56, 44)) -> np.ndarray:
    """(X, Y, Z=2) complex field: an oblique wave per slice with the slice's modulus."""
    return np.stack([wave_xy(shape_xy, g, 35 + 80 * z) for z, g in enumerate(MODULI)], axis=-1)


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    image = nib.Nifti1Image(np.asarray(data, dtype=np.float64), affine)
    image.header.set_zooms(PIXDIM[:2] + (PIXDIM[2],) * (data.ndim > 2) + (1.0,) * (data.ndim - 3))
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, path)
    return path


def invert(*args: str | Path) -> int:
    return main(["invert", *map(str, args)])


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.load(path)
    return image.get_fdata(), image.affine


def interior_median_kpa(maps: np.ndarray, z: int, volume: int = 0) -> float:
    return float(np.median(maps[8:-8, 8:-8, z, volume]))


# --- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["mmdi", "di"])
def test_offsets_layout_round_trip_keeps_geometry(tmp_path, method):
    images = wave_images(volume_xyz(), n_offsets=4)  # (X, Y, Z, T=4)
    source = save_nifti(tmp_path / "waves.nii.gz", images)
    out = tmp_path / "results" / "modulus.nii.gz"
    assert invert(source, "--method", method, "--frequency-hz", 60, "--out", out) == 0
    maps, affine = load(out)
    assert maps.shape == (56, 44, 2, 4)
    assert np.allclose(affine, AFFINE)
    for z, modulus in enumerate(MODULI):
        assert interior_median_kpa(maps, z) == pytest.approx(abs(modulus) / 1e3, rel=0.05)
        assert interior_median_kpa(maps, z, 1) == pytest.approx(modulus.real / 1e3, rel=0.05)
        assert interior_median_kpa(maps, z, 2) == pytest.approx(modulus.imag / 1e3, rel=0.15)
    assert maps[..., 3].min() >= 0.0 and maps[..., 3].max() <= 1.0
    assert np.allclose(maps[..., 0], np.hypot(maps[..., 1], maps[..., 2]), atol=1e-3)


def test_constant_offset_per_channel_is_removed(tmp_path):
    images = wave_images(volume_xyz(), n_offsets=4)
    offsets = np.array([0.7, -1.3, 2.1, 0.4])  # a different intercept per offset image
    save_nifti(tmp_path / "clean.nii", images)
    save_nifti(tmp_path / "shifted.nii", images + offsets)
    for name in ("clean", "shifted"):
        args = ("--method", "di", "--frequency-hz", 60, "--out", tmp_path / f"{name}-out.nii")
        assert invert(tmp_path / f"{name}.nii", *args) == 0
    reference, _ = load(tmp_path / "clean-out.nii")
    assert load(tmp_path / "shifted-out.nii")[0] == pytest.approx(reference, rel=1e-4, abs=1e-6)


def test_complex_layout_2d_matches_the_library(tmp_path):
    field = wave_xy((50, 40), MODULI[0], 60)
    source = save_nifti(tmp_path / "u.nii", np.stack([field.real, field.imag], axis=-1))
    out = tmp_path / "g.nii"
    assert (
        invert(source, "--method", "di", "--frequency-hz", 60, "--layout", "complex", "--out", out)
        == 0
    )
    maps, affine = load(out)
    assert maps.shape == (50, 40, 1, 4)
    assert np.allclose(affine, AFFINE)
    # The library sees (y, x) = the transposed NIfTI slice, (dy, dx) = (pixdim j, pixdim i).
    centred = (field - field.mean()).T[None]
    expected = direct_inversion(centred, (PIXDIM[1] * 1e-3, PIXDIM[0] * 1e-3), FREQUENCY)
    assert maps[:, :, 0, 0] == pytest.approx(expected.magnitude.T / 1e3, rel=1e-4, abs=1e-6)
    assert interior_median_kpa(maps, 0) == pytest.approx(abs(MODULI[0]) / 1e3, rel=0.02)


def test_mask_and_png(tmp_path):
    images = wave_images(volume_xyz(), n_offsets=4)
    mask = np.zeros((56, 44, 2), np.uint8)
    mask[6:50, 5:40] = 1
    source = save_nifti(tmp_path / "waves.nii", images)
    mask_path = save_nifti(tmp_path / "mask.nii", mask)
    out, png = tmp_path / "g.nii.gz", tmp_path / "preview.png"
    args = ("--method", "mmdi", "--frequency-hz", 60, "--mask", mask_path, "--png", png)
    assert invert(source, *args, "--out", out) == 0
    maps, _ = load(out)
    assert not maps[mask == 0].any()
    assert np.median(maps[10:46, 9:36, 0, 0]) == pytest.approx(abs(MODULI[0]) / 1e3, rel=0.05)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "g.json",  # the JSON summary beside OUT
        "g.nii.gz",
        "mask.nii",
        "preview.png",
        "waves.nii",
    ]


@pytest.mark.parametrize("shape", [(44, 56), (2, 44, 56), (1, 2, 44, 56)])
def test_npy_input_keeps_array_axes(tmp_path, shape):
    field = np.moveaxis(volume_xyz(), -1, 0).transpose(0, 2, 1)  # (z, y, x)
    data = field[0] if len(shape) == 2 else field if len(shape) == 3 else field[None]
    source = tmp_path / "u.npy"
    np.save(source, data)
    out = tmp_path / "g.nii"
    assert (
        invert(source, "--method", "di", "--frequency-hz", 60, "--voxel-size-mm", 1.5, "--out", out)
        == 0
    )
    maps, affine = load(out)
    spatial = shape[-3:] if len(shape) > 2 else (*shape, 1)
    assert maps.shape == (*spatial, 4)
    assert affine[0, 0] == pytest.approx(1.5) and affine[1, 1] == pytest.approx(1.5)


def test_sample_store_uses_its_frequency_density_and_mask(tmp_path):
    field = wave_xy((48, 48), MODULI[1], 20).T  # store axes (y, x): dy = pixdim j, dx = pixdim i
    spacing = (PIXDIM[1] * 1e-3, PIXDIM[0] * 1e-3)
    mask = np.ones((48, 48), bool)
    mask[:, :4] = False
    sample = Sample(
        displacement=field[None] * 1e-5,
        modulus=np.full((48, 48), MODULI[1]),
        mask=mask,
        labels=mask.astype(np.int16),
        attrs={
            "family": "homogeneous",
            "seed": 1,
            "frequency_hz": FREQUENCY,
            "voxel_size_m": list(spacing),
            "density_kg_m3": 1000.0,
            "config_hash": "test",
            "solver": {},
        },
    )
    write_sample(tmp_path / "sample.zarr", sample)
    out = tmp_path / "g.nii"
    assert invert(tmp_path / "sample.zarr", "--method", "mmdi", "--out", out) == 0
    maps, _ = load(out)
    assert maps.shape == (48, 48, 1, 4)
    assert not maps[:, :4].any()
    assert np.median(maps[8:-8, 12:-8, 0, 0]) == pytest.approx(abs(MODULI[1]) / 1e3, rel=0.05)


# --- errors: one line, exit status 2, no output -----------------------------------------------


def _write_bad_input(tmp_path: Path, case: str) -> tuple[Path, list[str]]:
    """An INPUT for ``case`` and the extra arguments that go with it."""
    good = wave_images(volume_xyz((24, 20)), n_offsets=4)
    base = ["--frequency-hz", "60"]
    if case == "2d-nifti":
        return save_nifti(tmp_path / "in.nii", good[..., 0, 0]), base
    if case == "complex-last-axis-4":
        return save_nifti(tmp_path / "in.nii", good), [*base, "--layout", "complex"]
    if case == "two-offsets":
        return save_nifti(tmp_path / "in.nii", good[..., :2]), base
    if case == "npy-1d":
        np.save(tmp_path / "in.npy", np.ones(30, complex))
        return tmp_path / "in.npy", [*base, "--voxel-size-mm", "1.5"]
    if case == "npy-real":
        np.save(tmp_path / "in.npy", np.ones((20, 20)))
        return tmp_path / "in.npy", [*base, "--voxel-size-mm", "1.5"]
    if case == "nan":
        good[3, 4, 0, 1] = np.nan
        return save_nifti(tmp_path / "in.nii", good), base
    if case == "missing-frequency":
        return save_nifti(tmp_path / "in.nii", good), []
    if case == "all-zero":
        return save_nifti(tmp_path / "in.nii", np.zeros_like(good)), base
    if case == "constant":
        return save_nifti(tmp_path / "in.nii", np.full_like(good, 3.0)), base
    if case == "unreadable":
        (tmp_path / "in.nii.gz").write_bytes(b"not a nifti file at all" * 20)
        return tmp_path / "in.nii.gz", base
    if case == "missing-file":
        return tmp_path / "nothing.nii", base
    if case == "npy-without-voxel-size":
        np.save(tmp_path / "in.npy", volume_xyz((24, 20))[..., 0])
        return tmp_path / "in.npy", base
    if case == "mask-shape":
        np.save(tmp_path / "mask.npy", np.ones((24, 21, 2)))
        return save_nifti(tmp_path / "in.nii", good), [*base, "--mask", str(tmp_path / "mask.npy")]
    if case == "tiny":
        return save_nifti(tmp_path / "in.nii", good[:5, :5]), base
    if case == "negative-frequency":
        return save_nifti(tmp_path / "in.nii", good), ["--frequency-hz", "-60"]
    raise ValueError(case)


BAD_INPUTS = [
    "2d-nifti",
    "complex-last-axis-4",
    "two-offsets",
    "npy-1d",
    "npy-real",
    "nan",
    "missing-frequency",
    "all-zero",
    "constant",
    "unreadable",
    "missing-file",
    "npy-without-voxel-size",
    "mask-shape",
    "tiny",
    "negative-frequency",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, capsys, case):
    source, extra = _write_bad_input(tmp_path, case)
    before = set(tmp_path.iterdir())
    out = tmp_path / "out.nii.gz"
    assert (
        invert(source, "--method", "mmdi", *extra, "--out", out, "--png", tmp_path / "p.png") == 2
    )
    stderr = capsys.readouterr().err.strip().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith("dime-pipeline invert: error: ")
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize("out_name", ["out.txt", "in.nii/out.nii"])  # wrong suffix; parent a file
def test_bad_output_path(tmp_path, capsys, out_name):
    source = save_nifti(tmp_path / "in.nii", wave_images(volume_xyz((24, 20))))
    out = tmp_path / out_name
    assert invert(source, "--method", "di", "--frequency-hz", 60, "--out", out) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.nii"]


def test_console_script(tmp_path, tool_env):
    """The installed ``dime-pipeline`` entry point: one success and one user error."""
    script = Path(sys.executable).parent / "dime-pipeline"
    if not script.exists():
        pytest.skip("dime-pipeline is not installed in this environment")
    field = wave_xy((40, 36), MODULI[0], 10)
    source = save_nifti(tmp_path / "u.nii", np.stack([field.real, field.imag], axis=-1))
    common = [
        str(script),
        "--quiet",
        "invert",
        str(source),
        "--method",
        "mmdi",
        "--layout",
        "complex",
    ]
    ok = subprocess.run(
        [*common, "--frequency-hz", "60", "--out", str(tmp_path / "g.nii")],
        capture_output=True,
        text=True,
        env=tool_env,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert nib.load(tmp_path / "g.nii").shape == (40, 36, 1, 4)
    bad = subprocess.run(
        [*common, "--out", str(tmp_path / "h.nii")],
        capture_output=True,
        text=True,
        env=tool_env,
        check=False,
    )
    assert bad.returncode == 2
    message = "--frequency-hz is required (the drive frequency of the acquisition)"
    assert bad.stderr.strip().splitlines() == [f"dime-pipeline invert: error: {message}"]
    assert not (tmp_path / "h.nii").exists()


def test_dime_method_with_a_model_file(tmp_path, capsys):
    """`--method dime --model` runs the network end to end on the same inputs as the baselines
    (an untrained network here: this checks the plumbing, not accuracy)."""
    from dime_pipeline.dime import DimeUNet, UNetConfig, save_model

    model = save_model(DimeUNet(UNetConfig(patch_size=16, depth=2, width=8)), tmp_path / "m.pt")
    field = wave_xy((50, 40), MODULI[0], 60)
    source = save_nifti(tmp_path / "wave.nii.gz", np.stack([field.real, field.imag], axis=-1))
    out = tmp_path / "dime.nii.gz"
    assert (
        invert(
            source,
            "--method",
            "dime",
            "--model",
            model,
            "--frequency-hz",
            "60",
            "--layout",
            "complex",
            "--out",
            out,
        )
        == 0
    )
    maps, _ = load(out)
    assert maps.shape[-1] == 4 and np.isfinite(maps).all() and (maps[..., 0] > 0).any()
    assert (
        invert(
            source,
            "--method",
            "mmdi",
            "--model",
            model,
            "--frequency-hz",
            "60",
            "--out",
            tmp_path / "x.nii",
        )
        == 2
    )
    assert "--model is for --method dime only" in capsys.readouterr().err
    missing = tmp_path / "none.pt"
    args = ["--frequency-hz", "60", "--layout", "complex", "--out", tmp_path / "y.nii"]
    assert invert(source, "--method", "dime", "--model", missing, *args) == 2
    assert "no such DIME model file" in capsys.readouterr().err
    assert not (tmp_path / "x.nii").exists() and not (tmp_path / "y.nii").exists()
