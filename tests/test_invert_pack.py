"""Baseline inversion of packed datasets (estimates stores) and ``invert`` on packs and acquired
stores: exact plane waves, schema round trip, one-line errors."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import zarr
from scipy import ndimage

from dime_pipeline.cli import main
from dime_pipeline.datasets import write_pack
from dime_pipeline.errors import UserError
from dime_pipeline.estimates import Estimates, read_estimates, write_estimates
from dime_pipeline.inversion import DIParameters, MMDIParameters
from dime_pipeline.inversion.packs import invert_pack, is_pack
from dime_pipeline.store import Sample, write_sample

RHO = 1000.0
SHAPE = (64, 64)
# (frequency Hz, voxel m, G* Pa) per row: about 12 and 8 px per wavelength, 5–8 wavelengths.
ROWS = [(60.0, 2e-3, 2000 + 400j), (90.0, 3e-3, 5000 + 1000j)]
SEEDS = [11, 12]
ANGLES = (30.0, 120.0)  # one plane wave per component


def plane_wave(modulus: complex, frequency: float, h: float, angle_deg: float) -> np.ndarray:
    """exp(-i k n·x) on the (y, x) grid, pixel centres ((i + ½)h, (j + ½)h)."""
    k = 2 * np.pi * frequency * np.sqrt(RHO / modulus)
    y, x = (np.indices(SHAPE) + 0.5) * h
    angle = np.deg2rad(angle_deg)
    return np.exp(-1j * k * (np.cos(angle) * x + np.sin(angle) * y))


def field(modulus: complex, frequency: float, h: float) -> np.ndarray:
    return 1e-5 * np.stack([plane_wave(modulus, frequency, h, a) for a in ANGLES])


MASK = np.zeros(SHAPE, bool)
MASK[4:-4, 6:-4] = True
INTERIOR = ndimage.binary_erosion(MASK, iterations=8)


@pytest.fixture
def pack(tmp_path) -> Path:
    """Two rows at different frequencies and voxel sizes; ``displacement`` is a wave of twice the
    modulus, so an inversion of the wrong field is off by √2."""
    n = len(ROWS)
    measured = np.stack([field(g, f, h) * MASK for f, h, g in ROWS])
    displacement = np.stack([field(2 * g, f, h) * MASK for f, h, g in ROWS])
    arrays = {
        "measured": measured,
        "displacement": displacement,
        "modulus": np.stack([np.full(SHAPE, g) * MASK for _, _, g in ROWS]),
        "mask": np.stack([MASK] * n),
        "labels": np.stack([MASK] * n).astype(np.int16),
        "frequency_hz": np.array([f for f, _, _ in ROWS]),
        "voxel_size_m": np.array([[h, h] for _, h, _ in ROWS]),
        "density_kg_m3": np.full(n, RHO),
        "snr": np.full(n, np.inf),
        "family": np.zeros(n),
        "seed": np.array(SEEDS),
    }
    attrs = {
        "split": "test",
        "families": ["homogeneous"],
        "config_hash": "0123456789abcdef",
        "versions": {},
        "sources": [f"s{i}.zarr" for i in range(n)],
    }
    path = tmp_path / "test.zarr"
    write_pack(path, arrays, attrs)
    return path


@pytest.mark.parametrize("method", ["mmdi", "di"])
def test_invert_pack_recovers_each_row(tmp_path, pack, method):
    out = tmp_path / "inversions" / f"{method}.zarr"
    written = invert_pack(pack, method, out)
    estimates = read_estimates(out)
    assert estimates.modulus.shape == estimates.confidence.shape == (len(ROWS), *SHAPE)
    assert estimates.modulus.dtype == np.complex64 and estimates.confidence.dtype == np.float32
    assert estimates.mask.dtype == bool and (estimates.mask == MASK).all()
    assert estimates.seed.tolist() == SEEDS
    for row, (_, _, modulus) in enumerate(ROWS):
        magnitude = np.abs(estimates.modulus[row])
        assert np.median(magnitude[INTERIOR]) == pytest.approx(abs(modulus), rel=0.03)
        assert np.isnan(estimates.modulus[row][~MASK]).all()
        assert np.isnan(estimates.confidence[row][~MASK]).all()
        assert (estimates.valid[row] <= MASK).all() and estimates.valid[row][INTERIOR].all()
        confidence = estimates.confidence[row][estimates.valid[row]]
        assert confidence.min() >= 0 and confidence.max() <= 1
    if method == "di":  # exact up to the 5-point stencil's truncation error
        for row, (*_, modulus) in enumerate(ROWS):
            magnitude = np.abs(estimates.modulus[row][INTERIOR])
            assert magnitude == pytest.approx(abs(modulus), rel=0.01)
    attrs = estimates.attrs
    assert attrs["schema_version"] == 1 and attrs["kind"] == "estimates"
    assert attrs["method"] == method and attrs["source"] == str(pack)
    assert attrs["config_hash"] == "0123456789abcdef" and attrs["split"] == "test"
    assert len(attrs["seconds"]) == len(ROWS) and min(attrs["seconds"]) > 0
    defaults = MMDIParameters() if method == "mmdi" else DIParameters()
    assert attrs["parameters"]["window_px"] == defaults.window_px
    # What invert_pack returns is what was written.
    assert np.array_equal(written.modulus, estimates.modulus, equal_nan=True)
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temporary left
    assert zarr.open_group(out, mode="r").metadata.consolidated_metadata is not None


def test_invert_pack_takes_parameters_and_checks_their_type(tmp_path, pack):
    invert_pack(pack, "di", tmp_path / "di.zarr", DIParameters(window_px=7))
    assert read_estimates(tmp_path / "di.zarr").attrs["parameters"]["window_px"] == 7
    with pytest.raises(TypeError):
        invert_pack(pack, "mmdi", tmp_path / "x.zarr", DIParameters())
    with pytest.raises(UserError, match="method"):
        invert_pack(pack, "mmdi2", tmp_path / "x.zarr")
    with pytest.raises(UserError, match="model"):
        invert_pack(pack, "dime", tmp_path / "x.zarr", model=tmp_path / "missing.pt")
    assert not (tmp_path / "x.zarr").exists()


def test_estimates_round_trip_and_unknown_schema(tmp_path, pack):
    modulus = np.full((1, 3, 8, 8), 3000 + 500j)
    modulus[0, 0, 0, 1] = np.nan
    mask = np.ones(modulus.shape, bool)
    mask[0, :, :, 0] = False
    estimates = Estimates(
        modulus=modulus,
        confidence=np.full(modulus.shape, 0.9),
        mask=mask,
        seed=np.array([5]),
        attrs={
            "method": "dime",
            "parameters": {},
            "source": "p",
            "config_hash": "h",
            "seconds": [1],
        },
    )
    write_estimates(tmp_path / "e.zarr", estimates)
    back = read_estimates(tmp_path / "e.zarr")
    assert back.modulus.shape == (1, 3, 8, 8) and len(back) == 1
    assert back.valid.sum() == mask.sum() - 1  # NaN outside the mask and where there is none
    assert np.isnan(back.confidence[~mask]).all()
    assert back.attrs["method"] == "dime" and back.attrs["units"]["modulus"] == "Pa"
    with pytest.raises(ValueError, match="lack"):
        write_estimates(tmp_path / "f.zarr", Estimates(**{**vars(estimates), "attrs": {}}))
    too_few = {**estimates.attrs, "seconds": []}
    with pytest.raises(ValueError, match="seconds"):
        write_estimates(tmp_path / "f.zarr", Estimates(**{**vars(estimates), "attrs": too_few}))
    assert not (tmp_path / "f.zarr").exists()
    # A pack is not an estimates store; nor is a future schema version.
    with pytest.raises(UserError, match="kind None"):
        read_estimates(pack)
    group = zarr.open_group(tmp_path / "e.zarr", mode="r+")
    group.attrs["schema_version"] = 99
    with pytest.raises(UserError, match="schema_version 99"):
        read_estimates(tmp_path / "e.zarr")
    with pytest.raises(UserError, match="no estimates store"):
        read_estimates(tmp_path / "missing.zarr")


# --- command line -------------------------------------------------------------------------------


def invert(*args: str | Path) -> int:
    return main(["invert", *map(str, args)])


def test_cli_pack_writes_the_same_estimates(tmp_path, pack):
    assert is_pack(pack) and not is_pack(tmp_path) and not is_pack(tmp_path / "nothing")
    out = tmp_path / "cli" / "mmdi.zarr"
    assert invert(pack, "--method", "mmdi", "--out", out) == 0
    invert_pack(pack, "mmdi", tmp_path / "lib.zarr")
    cli, lib = read_estimates(out), read_estimates(tmp_path / "lib.zarr")
    assert np.array_equal(cli.modulus, lib.modulus, equal_nan=True)
    assert cli.attrs["method"] == "mmdi" and cli.attrs["source"] == str(pack)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--frequency-hz", "60"], "drop --frequency-hz"),
        (["--voxel-size-mm", "2", "--density-kg-m3", "1050"], "drop --voxel-size-mm, --density"),
        (["--mask", "m.npy"], "drop --mask"),
    ],
)
def test_cli_pack_rejects_per_sample_options(tmp_path, capsys, pack, extra, message):
    before = set(tmp_path.iterdir())
    assert invert(pack, "--method", "di", *extra, "--out", tmp_path / "e.zarr") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dime-pipeline invert: error: ")
    assert message in lines[0]
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize("out_name", ["e.nii.gz", "test.zarr"])  # not .zarr; the pack itself
def test_cli_pack_bad_output(tmp_path, capsys, pack, out_name):
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    assert invert(pack, "--method", "di", "--out", tmp_path / out_name) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dime-pipeline invert: error: ")
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_cli_acquired_store_inverts_measured(tmp_path, caplog):
    """``measured`` has modulus G, ``displacement`` 2G: the result tells which one was used."""
    frequency, h, modulus = ROWS[0]
    sample = Sample(
        displacement=field(2 * modulus, frequency, h),
        modulus=np.full(SHAPE, modulus),
        mask=np.ones(SHAPE, bool),
        labels=np.ones(SHAPE, np.int16),
        attrs={
            "family": "homogeneous",
            "seed": 1,
            "frequency_hz": frequency,
            "voxel_size_m": [h, h],
            "density_kg_m3": RHO,
            "config_hash": "test",
            "solver": {},
        },
        measured=field(modulus, frequency, h),
    )
    write_sample(tmp_path / "acquired.zarr", sample)
    out = tmp_path / "g.nii"
    with caplog.at_level("INFO"):
        assert invert(tmp_path / "acquired.zarr", "--method", "di", "--out", out) == 0
    assert "inverting its measured" in caplog.text
    maps = nib.load(out).get_fdata()
    assert np.median(maps[8:-8, 8:-8, 0, 0]) == pytest.approx(abs(modulus) / 1e3, rel=0.01)
