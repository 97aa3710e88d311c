"""``dime-pipeline invert`` outputs: OUT's geometry (the voxel size used), the JSON summary, the
shear-wave speed and wavelength maps, the confidence mask, the PNG (colour scale, radiological
orientation) and per-slice progress."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import matplotlib.image
import nibabel as nib
import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.contour import ContourSet
from PIL import Image
from test_invert_cli import AFFINE, PIXDIM, invert, load, save_nifti, volume_xyz, wave_xy

from dime_pipeline.commands.invert import invert_by_slice
from dime_pipeline.inversion import mmdi, wave_images
from dime_pipeline.userdata import load_user_data
from dime_pipeline.userdata.preview import preview_figure, radiological

MODULUS = 2000 + 300j
FREQUENCY = 60.0


def homogeneous(path: Path, shape=(64, 60), noise: float = 0.0, affine=AFFINE) -> Path:
    """A complex-layout NIfTI of one oblique plane wave of MODULUS (PIXDIM spacing)."""
    field = wave_xy(shape, MODULUS, 30)
    real, imaginary = np.random.default_rng(3).standard_normal((2, *shape))
    field = field + noise * (real + 1j * imaginary)
    return save_nifti(path, np.stack([field.real, field.imag], axis=-1), affine)


def run(source: Path, out: Path, *extra: object, method: str = "mmdi") -> dict:
    argv = [source, "--method", method, "--frequency-hz", FREQUENCY, "--layout", "complex"]
    assert invert(*argv, *extra, "--out", out) == 0
    return json.loads(out.with_name(out.name.split(".nii")[0] + ".json").read_text())


# --- geometry: OUT carries the voxel size used -------------------------------------------------


def test_out_keeps_the_header_voxel_size_and_affine(tmp_path):
    out = tmp_path / "g.nii.gz"
    summary = run(homogeneous(tmp_path / "u.nii"), out, method="di")
    image = nib.load(out)
    assert image.header.get_zooms() == pytest.approx((*PIXDIM, 1.0))
    assert image.header.get_xyzt_units()[0] == "mm"
    assert np.allclose(image.affine, AFFINE)
    assert summary["voxel_size_mm"] == pytest.approx(PIXDIM[:2])
    assert summary["voxel_size_source"] == "NIfTI header (pixdim)"


def test_voxel_size_override_is_written_to_out_and_the_mask(tmp_path):
    out, mask = tmp_path / "g.nii.gz", tmp_path / "cm.nii"
    source = homogeneous(tmp_path / "u.nii")
    summary = run(source, out, "--voxel-size-mm", 2.5, "--confidence-mask", mask, method="di")
    for path in (out, mask):
        image = nib.load(path)
        assert image.header.get_zooms()[:3] == pytest.approx((2.5, 2.5, PIXDIM[2]))
        assert image.header.get_xyzt_units()[0] == "mm"
        expected = AFFINE.copy()
        expected[:3, :2] *= 2.5 / np.array(PIXDIM[:2])  # directions and origin kept
        assert np.allclose(image.affine, expected)
    assert summary["voxel_size_mm"] == [2.5, 2.5]
    assert summary["voxel_size_source"] == "--voxel-size-mm"


def test_a_micron_header_is_written_in_mm(tmp_path):
    field = wave_xy((48, 40), MODULUS, 30)
    data = np.stack([field.real, field.imag], axis=-1)
    microns = nib.Nifti1Image(data, np.diag([1e3 * s for s in PIXDIM] + [1.0]))
    microns.header.set_xyzt_units("micron")
    nib.save(microns, tmp_path / "um.nii")
    save_nifti(tmp_path / "mm.nii", data, np.diag([*PIXDIM, 1.0]))
    run(tmp_path / "um.nii", tmp_path / "g_um.nii", method="di")
    run(tmp_path / "mm.nii", tmp_path / "g_mm.nii", method="di")
    in_um, in_mm = nib.load(tmp_path / "g_um.nii"), nib.load(tmp_path / "g_mm.nii")
    assert in_um.header.get_xyzt_units()[0] == "mm"
    assert in_um.header.get_zooms()[:2] == pytest.approx(PIXDIM[:2])
    assert np.allclose(in_um.affine, in_mm.affine)
    assert in_um.get_fdata() == pytest.approx(in_mm.get_fdata(), rel=1e-5, abs=1e-6)


def test_npy_out_pixdim_is_the_given_voxel_size(tmp_path):
    np.save(tmp_path / "u.npy", wave_xy((40, 48), MODULUS, 30))
    argv = ["--method", "di", "--frequency-hz", 60, "--voxel-size-mm", 1.7]
    assert invert(tmp_path / "u.npy", *argv, "--out", tmp_path / "g.nii") == 0
    assert nib.load(tmp_path / "g.nii").header.get_zooms() == pytest.approx((1.7, 1.7, 1.7, 1.0))


# --- the JSON summary ---------------------------------------------------------------------------


def test_summary_of_a_homogeneous_plane_wave(tmp_path):
    out, mask_path = tmp_path / "g.nii.gz", tmp_path / "cm.nii.gz"
    summary = run(homogeneous(tmp_path / "u.nii.gz"), out, "--confidence-mask", mask_path)
    maps, _ = load(out)
    confident = nib.load(mask_path).get_fdata() > 0
    valid = maps[..., 3] > 0
    assert summary["method"] == "mmdi"
    assert summary["frequency_hz"] == FREQUENCY and summary["density_kg_m3"] == 1000.0
    assert summary["input"] == str(tmp_path / "u.nii.gz") and summary["output"] == str(out)
    assert summary["mask_pixels"] == 64 * 60 and summary["warnings"] == []
    inside = summary["regions"]["confidence_mask"]
    assert inside["pixels"] == confident.sum() > 0.5 * 64 * 60
    assert summary["regions"]["mask"]["pixels"] == valid.sum()
    assert inside["abs_g_kpa"]["median"] == pytest.approx(abs(MODULUS) / 1e3, rel=0.03)
    assert inside["storage_kpa"]["median"] == pytest.approx(MODULUS.real / 1e3, rel=0.03)
    assert inside["loss_kpa"]["median"] == pytest.approx(MODULUS.imag / 1e3, rel=0.15)
    for name, volume in (("abs_g_kpa", 0), ("storage_kpa", 1), ("loss_kpa", 2)):
        for region, where in (("confidence_mask", confident), ("mask", valid)):
            values = maps[..., volume][where]
            q1, median, q3 = np.percentile(values, [25, 50, 75])
            stats = summary["regions"][region][name]
            assert stats["median"] == pytest.approx(median, rel=1e-5, abs=1e-6)
            assert stats["q1"] == pytest.approx(q1, rel=1e-5, abs=1e-6)
            assert stats["iqr"] == pytest.approx(q3 - q1, rel=1e-4, abs=1e-6)
    # the shear-wave speed of a damped plane wave: c = ω / Re(k), k = ω √(ρ/G*)
    omega = 2 * np.pi * FREQUENCY
    speed = omega / (omega * np.sqrt(1000.0 / MODULUS)).real
    assert inside["shear_wave_speed_m_s"]["median"] == pytest.approx(speed, rel=0.02)


def test_summary_is_never_written_over_an_input(tmp_path, capsys):
    source = homogeneous(tmp_path / "u.nii")
    (tmp_path / "g.json").write_text("{}")  # an input named like OUT's summary
    argv = [tmp_path / "g.json", "--method", "di", "--frequency-hz", 60, "--out"]
    assert invert(*argv, tmp_path / "g.nii") == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert (tmp_path / "g.json").read_text() == "{}" and source.exists()


# --- shear-wave speed and wavelength maps; the confidence mask -----------------------------------


@pytest.mark.parametrize("density", [1000.0, 1100.0])
def test_wave_maps_follow_the_modulus(tmp_path, density):
    out = tmp_path / "g.nii"
    extra = ("--wave-maps", "--density-kg-m3", density)
    summary = run(homogeneous(tmp_path / "u.nii", noise=0.05), out, *extra)
    maps, _ = load(out)
    assert maps.shape[-1] == 6
    assert summary["volumes"][4:] == ["shear-wave speed (m/s)", "wavelength (px)"]
    magnitude, storage = 1e3 * maps[..., 0], 1e3 * maps[..., 1]
    valid = maps[..., 3] > 0
    expected = np.sqrt(2 * magnitude**2 / (density * (storage + magnitude)))[valid]
    assert maps[..., 4][valid] == pytest.approx(expected, rel=1e-4)
    assert maps[..., 5][valid] == pytest.approx(expected / (FREQUENCY * 1.8e-3), rel=1e-4)
    assert not maps[..., 4:][~valid].any()


def test_without_wave_maps_out_keeps_four_volumes(tmp_path):
    out = tmp_path / "g.nii"
    summary = run(homogeneous(tmp_path / "u.nii"), out, method="di")
    assert load(out)[0].shape[-1] == 4 and len(summary["volumes"]) == 4


def test_confidence_mask_is_confidence_at_least_95_in_the_mask(tmp_path):
    source = homogeneous(tmp_path / "u.nii", noise=0.05)
    mask = np.zeros((64, 60, 1), np.uint8)
    mask[5:58, 8:50] = 1
    mask_path = save_nifti(tmp_path / "mask.nii", mask)
    out, confident_path = tmp_path / "g.nii", tmp_path / "cm.nii"
    run(source, out, "--mask", mask_path, "--confidence-mask", confident_path)
    maps, _ = load(out)
    confident = nib.load(confident_path)
    assert confident.get_data_dtype() == np.uint8 and confident.shape == (64, 60, 1)
    confident = confident.get_fdata()
    confidence = maps[..., 3]
    expected = (confidence >= 0.95) & (mask > 0)
    assert 0 < expected.sum() < (mask > 0).sum()  # noise leaves some pixels out
    clear = np.abs(confidence - 0.95) > 1e-6  # float32 rounding at the threshold
    assert np.array_equal(confident[clear] > 0, expected[clear])
    assert not confident[mask == 0].any()


# --- PNG: shared colour scale, radiological orientation -----------------------------------------


def colour_count(png: Path, value: float) -> int:
    """Pixels of the PNG within a small distance of viridis(value)."""
    rgb = matplotlib.image.imread(png)[..., :3]
    target = np.array(colormaps["viridis"](value)[:3])
    return int((np.linalg.norm(rgb - target, axis=-1) < 0.04).sum())


def test_vmax_sets_the_png_colour_scale(tmp_path):
    source = homogeneous(tmp_path / "u.nii")
    level = abs(MODULUS) / 1e3
    pngs = {}
    for vmax in (2 * level, 20 * level):
        pngs[vmax] = tmp_path / f"p{vmax:.0f}.png"
        run(source, tmp_path / f"g{vmax:.0f}.nii", "--png", pngs[vmax], "--vmax", vmax)
        assert Image.open(pngs[vmax]).text["vmax_kpa"] == f"{vmax:.6g}"
    near, far = pngs[2 * level], pngs[20 * level]
    assert colour_count(near, 0.5) > 5000 and colour_count(near, 0.05) < 1000
    assert colour_count(far, 0.05) > 5000 and colour_count(far, 0.5) < 1000


def test_two_methods_share_a_colour_scale(tmp_path):
    source = homogeneous(tmp_path / "u.nii")
    for method in ("di", "mmdi"):
        png = tmp_path / f"{method}.png"
        run(source, tmp_path / f"{method}.nii", "--png", png, "--vmax", 4, method=method)
        assert Image.open(png).text["vmax_kpa"] == "4"
        assert colour_count(png, abs(MODULUS) / 4e3) > 5000


@pytest.mark.parametrize(
    ("affine", "labels"),
    [
        (AFFINE, "RLAP"),  # i → anterior, j → patient left
        (np.diag([-1.0, -1.0, 1.0, 1.0]), "RLAP"),  # LPS-like storage (DICOM order)
        (np.diag([1.0, 1.0, 1.0, 1.0]), "RLAP"),  # RAS storage
        (np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]]), "RLSI"),  # coronal
        (np.array([[0.0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]), "APSI"),  # sagittal
    ],
    ids=["test-affine", "lps", "ras", "coronal", "sagittal"],
)
def test_radiological_orientation_puts_patient_right_on_the_left(affine, labels):
    orientation = radiological(affine)
    assert "".join(orientation.labels[s] for s in ("left", "right", "top", "bottom")) == labels
    # the voxel nearest the first label's end (R or A) and the third's (A or S) lands top left
    plane = np.zeros((7, 5))
    world = np.array([[affine[:3, :3] @ (i, j, 0) for j in range(5)] for i in range(7)])
    axes = {"R": (0, 1), "A": (1, 1), "S": (2, 1)}
    (across, sign_a), (down, sign_d) = axes[labels[0]], axes[labels[2]]
    score = sign_a * world[..., across] + sign_d * world[..., down]
    plane[np.unravel_index(np.argmax(score), plane.shape)] = 1
    shown = orientation.apply(plane)
    assert shown[0, 0] == 1


def test_png_hatches_pixels_below_95_percent_confidence(tmp_path):
    source = homogeneous(tmp_path / "u.nii", noise=0.15)  # about a quarter of the pixels below 95 %
    volume = load_user_data(source, layout="complex", frequency_hz=FREQUENCY)
    result = mmdi(volume.displacement, volume.voxel_size_m, FREQUENCY, 1000.0, volume.mask)
    figure, vmax = preview_figure(volume, result, "mmdi", None)
    assert vmax == pytest.approx(np.percentile(result.magnitude[result.valid] / 1e3, 99))
    ax = figure.axes[0]
    orientation = radiological(volume.affine)
    shown = orientation.apply((result.magnitude / 1e3).T)  # library (y, x) = NIfTI (j, i)
    assert np.allclose(ax.images[0].get_array(), shown)
    assert [text.get_text() for text in ax.texts] == ["R", "L", "A", "P"]
    (hatching,) = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert hatching.hatches == ["////"]
    doubtful = orientation.apply((result.valid & (result.confidence < 0.95)).T)
    assert 0.2 < doubtful.mean() < 0.8
    rows, columns = np.indices(doubtful.shape)
    centres = np.column_stack([columns.ravel(), rows.ravel()])  # (x, y) in data coordinates
    inside = np.zeros(len(centres), bool)
    for path in hatching.get_paths():
        inside |= path.contains_points(centres)
    assert (inside.reshape(doubtful.shape) == doubtful).mean() > 0.97


def test_a_sample_store_is_drawn_radiologically(tmp_path):
    """A store's grid has x towards the patient's left and y anterior (docs/stores.md): its
    preview puts anterior at the top (rows flipped) and the patient's right on the left."""
    from dime_pipeline.store import Sample, write_sample

    ny, nx = 40, 36
    rows, x = np.indices((ny, nx)) * 2e-3
    mask = rows >= 30e-3  # tissue in the anterior (high y) part only: drawn at the top
    field = np.exp(-1j * 2 * np.pi * x / 0.03)[None] * np.ones((3, 1, 1)) * mask
    attrs = {
        "family": "homogeneous",
        "seed": 0,
        "frequency_hz": FREQUENCY,
        "voxel_size_m": [2e-3, 2e-3],
        "density_kg_m3": 1000.0,
        "config_hash": "t",
        "solver": {},
        "dim": 2,
        "components": ["x", "y", "z"],
    }
    store = tmp_path / "s.zarr"
    write_sample(
        store, Sample(field, np.full((ny, nx), 1e3 + 0j), mask, mask.astype(np.int16), attrs)
    )
    volume = load_user_data(store)
    result = mmdi(volume.displacement, volume.voxel_size_m, FREQUENCY, 1000.0, volume.mask)
    figure, _ = preview_figure(volume, result, "mmdi", None)
    ax = figure.axes[0]
    shown = ax.images[0].get_array()
    assert np.allclose(np.ma.filled(shown, 0.0), (result.magnitude / 1e3)[::-1])
    assert np.ma.count(shown[: ny // 4]) > 0 and np.ma.count(shown[-ny // 4 :]) == 0
    assert [text.get_text() for text in ax.texts] == ["R", "L", "A", "P"]


# --- slice by slice ---------------------------------------------------------------------------


def test_slice_by_slice_equals_one_call_on_the_volume(tmp_path):
    source = save_nifti(tmp_path / "w.nii", wave_images(volume_xyz((40, 36)), 4))
    volume = load_user_data(source, frequency_hz=60.0)
    whole = mmdi(volume.displacement, volume.voxel_size_m, 60.0, 1000.0, volume.mask)
    by_slice = invert_by_slice(partial(mmdi), volume)
    for name in ("modulus", "confidence", "confidence_mask", "valid"):
        assert np.array_equal(getattr(by_slice, name), getattr(whole, name)), name


def test_progress_per_slice_and_quiet(tmp_path, tool_env):
    script = Path(sys.executable).parent / "dime-pipeline"
    if not script.exists():
        pytest.skip("dime-pipeline is not installed in this environment")
    field = np.stack([wave_xy((24, 20), 2000 + 300j, 30 * z) for z in range(3)], axis=-1)
    source = save_nifti(tmp_path / "w.nii", wave_images(field, 4))
    argv = ["invert", str(source), "--method", "di", "--frequency-hz", "60"]

    def stderr(*flags: str, out: str) -> str:
        command = [str(script), *flags, *argv, "--out", str(tmp_path / out)]
        done = subprocess.run(command, capture_output=True, text=True, env=tool_env, check=False)
        assert done.returncode == 0, done.stderr
        return done.stderr

    talk = [line for line in stderr(out="a.nii").splitlines() if "inverting slices" in line]
    assert [line.split("inverting slices: ")[1][:3] for line in talk] == ["1/3", "2/3", "3/3"]
    quiet = stderr("--quiet", out="b.nii")
    assert "inverting slices" not in quiet and " INFO " not in quiet  # warnings only
