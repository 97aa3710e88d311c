"""The pretrained model shipped with the package: exact plane waves at several frequencies and
voxel sizes within 10 % (issue 6), used by default by `invert --method dime`."""

from __future__ import annotations

import numpy as np
import pytest

from dime_pipeline.cli import main
from dime_pipeline.dime.inference import SHIPPED_MODEL, invert_dime, load_model

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
