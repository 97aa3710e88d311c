"""The pretrained model shipped with the package: exact plane waves at several frequencies and
voxel sizes within 10 % (issue 6), used by default by `invert --method dime`."""

from __future__ import annotations

import numpy as np
import pytest

from dime_pipeline.cli import main
from dime_pipeline.dime.inference import invert_dime
from dime_pipeline.dime.model_file import SHIPPED_MODEL, load_model

CASES = [  # frequency (Hz), voxel (m), G* (Pa): wavelengths from 9 to 41 px
    (30.0, 1.0e-3, 1500 + 300j),
    (40.0, 1.5e-3, 2000 + 400j),
    (60.0, 2.0e-3, 3000 + 600j),
    (60.0, 3.0e-3, 2500 + 500j),
    (90.0, 2.5e-3, 8000 + 1600j),
]


@pytest.fixture(scope="module")
def shipped():
    return load_model()


def _plane_wave(frequency: float, voxel: float, modulus: complex, angle_deg: float, n: int = 96):
    k = 2 * np.pi * frequency * np.sqrt(1000.0 / modulus)
    y, x = np.mgrid[0:n, 0:n] * voxel
    angle = np.deg2rad(angle_deg)
    return np.exp(-1j * k * (np.cos(angle) * x + np.sin(angle) * y))[None]


def test_the_model_ships_within_budget():
    assert SHIPPED_MODEL.is_file()
    assert SHIPPED_MODEL.stat().st_size <= 20 * 2**20


@pytest.mark.parametrize(("frequency", "voxel", "modulus"), CASES)
def test_shipped_model_on_exact_plane_waves(shipped, frequency, voxel, modulus):
    for angle in (0.0, 35.0, 110.0):
        field = _plane_wave(frequency, voxel, modulus, angle)
        maps = invert_dime(
            field, np.ones(field.shape[1:], bool), frequency, voxel, 1000.0, model=shipped
        )
        interior = maps["magnitude"][16:-16, 16:-16]
        assert np.median(interior) == pytest.approx(abs(modulus), rel=0.10)


def test_invert_uses_the_shipped_model_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("DIME_MODEL", raising=False)
    field = _plane_wave(60.0, 2.0e-3, 3000 + 600j, 20.0, n=64)
    np.save(tmp_path / "u.npy", field[0])  # a 2D (y, x) complex array
    out = tmp_path / "g.nii.gz"
    args = ["invert", str(tmp_path / "u.npy"), "--method", "dime", "--frequency-hz", "60"]
    assert main([*args, "--voxel-size-mm", "2", "--out", str(out)]) == 0
    import nibabel as nib

    maps = np.asarray(nib.load(out).dataobj)
    assert np.median(maps[16:-16, 16:-16, 0, 0]) == pytest.approx(3.06, rel=0.10)  # kPa


# --- wavelength adaptivity (dime.wavelength) ---------------------------------------------------

BACKGROUND = 2000 + 200j  # 2 kPa, loss 0.1: λ = 23.7 mm at 60 Hz


@pytest.mark.parametrize("px_per_wavelength", [6, 8, 12, 30, 60, 100])
def test_plane_waves_within_5_percent_from_6_to_100_px_per_wavelength(shipped, px_per_wavelength):
    """Measured (docs/dime.md): −1.1, +0.7, −1.2, −1.8, −3.1, +0.5 % at 6, 8, 12, 30, 60, 100
    px; without adaptivity −14.7 % at 8, −25 % at 60 and −68 % at 100 (trained on 5–49 px)."""
    k = 2 * np.pi * 60.0 * np.sqrt(1000.0 / BACKGROUND)
    voxel = 2 * np.pi / k.real / px_per_wavelength
    n = min(6 * px_per_wavelength, 480)
    y, x = np.mgrid[0:n, 0:n] * voxel
    angle = np.deg2rad(30.0)
    field = np.exp(-1j * k * (np.cos(angle) * x + np.sin(angle) * y))[None]
    maps = invert_dime(field, None, 60.0, voxel, 1000.0, model=shipped)
    border = max(8, px_per_wavelength // 2)
    interior = maps["magnitude"][border:-border, border:-border]
    assert np.median(interior) == pytest.approx(abs(BACKGROUND), rel=0.05)
    if px_per_wavelength == 100:  # the mechanism, not luck: one pass is far off there
        plain = invert_dime(field, None, 60.0, voxel, 1000.0, model=shipped, adapt=False)
        assert np.median(plain["magnitude"][border:-border, border:-border]) < 0.5 * abs(BACKGROUND)


@pytest.mark.parametrize("px_per_wavelength", [12, 80])
def test_a_scattering_scene_at_a_short_and_a_long_wavelength(shipped, px_per_wavelength):
    """An exact Bessel-series scene (tests/test_inversion.py): a cylinder 3x stiffer than the
    background, 1.3 wavelengths across, lit from three directions. Pixel r of |G*| with the
    truth: 0.93 at 12 px and 0.96 at 80 px per wavelength (0.39 at 80 without adaptivity)."""
    from test_inversion import ANGLES, CylinderScattering

    scatterer = CylinderScattering(background=BACKGROUND, inclusion=3 * BACKGROUND, radius=0.015)
    wavelength = 2 * np.pi / scatterer.k1.real
    voxel = wavelength / px_per_wavelength
    n = min(6 * px_per_wavelength, 480)
    c = (np.arange(n) - (n - 1) / 2) * voxel
    x, y = np.meshgrid(c, c)
    fields = scatterer.field(x, y, ANGLES)
    r = np.hypot(x, y)
    truth = np.where(r < scatterer.radius, abs(scatterer.inclusion), abs(scatterer.background))
    maps = invert_dime(fields, None, 60.0, voxel, 1000.0, model=shipped)
    region = np.maximum(abs(x), abs(y)) < min(0.85 * c.max(), 2.5 * wavelength)
    assert np.corrcoef(maps["magnitude"][region], truth[region])[0, 1] >= 0.85


@pytest.mark.parametrize("px_per_wavelength", [12, 80])
def test_mask_borders_keep_their_estimates(shipped, px_per_wavelength):
    """A plane wave in a disc: every mask pixel gets an estimate, also where a coarse pass saw
    no tissue, and the ring along the mask's edge stays within 10 % (measured −5.2 % at 12 px,
    −2.2 % at 80; one pass: −59 % at 80)."""
    from scipy import ndimage

    k = 2 * np.pi * 60.0 * np.sqrt(1000.0 / BACKGROUND)
    voxel = 2 * np.pi / k.real / px_per_wavelength
    n = min(6 * px_per_wavelength, 400)
    y, x = (np.indices((n, n)) - (n - 1) / 2) * voxel
    mask = np.hypot(x, y) < 0.42 * n * voxel
    field = np.exp(-1j * k * (np.cos(0.5) * x + np.sin(0.5) * y))[None] * mask
    maps = invert_dime(field, mask, 60.0, voxel, 1000.0, model=shipped)
    assert maps["valid"][mask].all() and not maps["valid"][~mask].any()
    edge = mask & ~ndimage.binary_erosion(mask, iterations=max(2, px_per_wavelength // 8))
    assert np.median(maps["magnitude"][edge]) == pytest.approx(abs(BACKGROUND), rel=0.10)
