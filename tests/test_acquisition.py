"""The MRE acquisition model on exact fields: plane waves and linear fields in a disc mask.

Checks: offsets → DFT is exact, realised SNR equals the request (both definitions, measured here
independently of the module), determinism per seed, voxel and slice averaging of constant and
linear fields, wrapping, masking, and one-line CLI errors that write nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from dime_pipeline.acquisition import AcquisitionParams, acquire
from dime_pipeline.acquisition.averaging import slab_operator
from dime_pipeline.acquisition.encoding import first_harmonic, phase_images, wrap_phase
from dime_pipeline.acquisition.snr import octahedral_shear_strain
from dime_pipeline.cli import main
from dime_pipeline.errors import UserError
from dime_pipeline.store import Sample, read_sample, write_sample

H = 1e-3  # simulation voxel edge (m)
MODULUS = 3000 + 600j


def centres(n: int, h: float = H) -> np.ndarray:
    return (np.arange(n) + 0.5) * h


def disc(shape: tuple[int, int], fraction: float = 0.42) -> np.ndarray:
    y, x = np.meshgrid(centres(shape[0]), centres(shape[1]), indexing="ij")
    radius = fraction * min(shape) * H
    return (x - shape[1] * H / 2) ** 2 + (y - shape[0] * H / 2) ** 2 < radius**2


def plane_waves(shape: tuple[int, int]) -> np.ndarray:
    """Three decaying plane waves exp(-ik n·x) (one per component), amplitude ~10 µm."""
    y, x = np.meshgrid(centres(shape[0]), centres(shape[1]), indexing="ij")
    k = 2 * np.pi / (12 * H) * (1 - 0.05j)
    waves = [
        np.exp(-1j * k * (np.cos(a) * x + np.sin(a) * y)) * amp
        for a, amp in ((0.3, 1.0), (1.9, 0.7), (4.0, 1.3))
    ]
    return 1e-5 * np.stack(waves)


def make_sample(field, mask, labels=None, modulus=None, voxel=None, **attrs) -> Sample:
    spatial = mask.shape
    labels = mask.astype(np.int16) if labels is None else labels
    modulus = np.where(mask, MODULUS, 0) if modulus is None else modulus
    return Sample(
        displacement=np.asarray(field, dtype=complex),
        modulus=np.asarray(modulus, dtype=complex),
        mask=mask,
        labels=np.asarray(labels, dtype=np.int16),
        attrs={
            "family": "homogeneous",
            "seed": 7,
            "frequency_hz": 60.0,
            "voxel_size_m": list(voxel or [H] * len(spatial)),
            "density_kg_m3": 1000.0,
            "config_hash": "cafe",
            "components": ["x", "y", "z"],
            "solver": {"dofs": {}, "ranks": 1, "seconds": {}, "versions": {}},
            **attrs,
        },
    )


@pytest.fixture(scope="module")
def wave_sample() -> Sample:
    shape = (48, 48)
    return make_sample(plane_waves(shape), disc(shape))


def in_mask_error(result: Sample) -> float:
    """Max |measured − displacement| relative to the peak amplitude."""
    peak = np.abs(result.displacement).max()
    return float(np.abs(result.measured - result.displacement).max() / peak)


# --- offsets, DFT -----------------------------------------------------------------------------


@pytest.mark.parametrize("offsets", [3, 4, 8])
def test_offsets_then_dft_recover_first_harmonic_exactly(wave_sample, offsets):
    field = wave_sample.displacement
    images = phase_images(field, 2.5e5, offsets)
    assert images.shape == (offsets, *field.shape) and images.dtype == np.float64
    peak = np.abs(field).max()
    np.testing.assert_allclose(first_harmonic(images, 2.5e5), field, rtol=0, atol=1e-14 * peak)
    result = acquire(wave_sample, AcquisitionParams(offsets=offsets), seed=1)
    assert in_mask_error(result) < 1e-13
    np.testing.assert_array_equal(result.displacement[:, ~result.mask], 0)
    np.testing.assert_array_equal(result.measured[:, ~result.mask], 0)


def test_no_offsets_no_noise_is_the_averaged_field(wave_sample):
    result = acquire(wave_sample, AcquisitionParams(offsets=0), seed=1)
    np.testing.assert_array_equal(result.measured, result.displacement)
    np.testing.assert_array_equal(result.displacement, wave_sample.displacement * disc((48, 48)))
    assert result.attrs["acquisition"]["snr"] is None


def test_default_encoding_maps_peak_to_one_radian(wave_sample):
    facts = acquire(wave_sample, AcquisitionParams(), seed=1).attrs["acquisition"]
    peak = np.abs(wave_sample.displacement[:, wave_sample.mask]).max()
    assert facts["encoding_rad_per_m"] == pytest.approx(1 / peak)
    assert facts["achieved_peak_phase_rad"] == pytest.approx(1.0)
    explicit = AcquisitionParams(encoding_rad_per_m=1e5)
    assert acquire(wave_sample, explicit, 1).attrs["acquisition"]["encoding_rad_per_m"] == 1e5


# --- noise and SNR ----------------------------------------------------------------------------


def oss_2d(field: np.ndarray, h: float) -> np.ndarray:
    """Octahedral shear strain of a 2D store (∂/∂z = 0), written out for an independent check."""
    ux, uy, uz = field

    def dx(u: np.ndarray) -> np.ndarray:
        return np.gradient(u, h, axis=1)

    def dy(u: np.ndarray) -> np.ndarray:
        return np.gradient(u, h, axis=0)

    exx, eyy = dx(ux), dy(uy)
    exy, exz, eyz = (dy(ux) + dx(uy)) / 2, dx(uz) / 2, dy(uz) / 2
    normal = abs(exx - eyy) ** 2 + abs(eyy) ** 2 + abs(exx) ** 2
    return 2 / 3 * np.sqrt(normal + 6 * (abs(exy) ** 2 + abs(exz) ** 2 + abs(eyz) ** 2))


def rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.abs(values) ** 2)))


@pytest.mark.parametrize("offsets", [0, 4, 8])
@pytest.mark.parametrize("snr", [2.0, 10.0, 50.0])
@pytest.mark.parametrize("definition", ["amplitude", "strain"])
def test_measured_snr_equals_request(wave_sample, offsets, snr, definition):
    params = AcquisitionParams(offsets=offsets, snr=snr, snr_definition=definition)
    result = acquire(wave_sample, params, seed=11)
    noise, signal, mask = result.measured - result.displacement, result.displacement, result.mask
    if definition == "amplitude":
        measured = rms(signal[:, mask]) / rms(noise[:, mask])
    else:
        region = ndimage.binary_erosion(mask)
        measured = rms(oss_2d(signal, H)[region]) / rms(oss_2d(noise, H)[region])
    assert measured == pytest.approx(snr, rel=0.05)
    facts = result.attrs["acquisition"]
    recorded = facts["snr"] if definition == "amplitude" else facts["strain_snr"]
    assert recorded == pytest.approx(measured, rel=1e-9)
    assert facts["noise_sigma_m"] == pytest.approx(rms(noise[:, mask]), rel=1e-9)
    assert (facts["noise_sigma_rad"] is None) == (offsets == 0)


def test_phase_noise_sigma_matches_harmonic_noise(wave_sample):
    """Per-image σ_φ becomes complex RMS 2σ_φ/(s√N) on the harmonic (in expectation)."""
    facts = acquire(wave_sample, AcquisitionParams(offsets=8, snr=5), 3).attrs["acquisition"]
    expected = 2 * facts["noise_sigma_rad"] / (facts["encoding_rad_per_m"] * np.sqrt(8))
    assert facts["noise_sigma_m"] == pytest.approx(expected, rel=0.05)


def test_octahedral_shear_strain_of_linear_fields():
    shape = (9, 10)
    y, x = np.meshgrid(centres(shape[0]), centres(shape[1]), indexing="ij")
    zero = np.zeros(shape)
    shear = octahedral_shear_strain(np.stack([2.0 * y, zero, zero]), (H, H))
    np.testing.assert_allclose(shear, np.sqrt(6) / 3 * 2.0)  # ε_xy = 1
    stretch = octahedral_shear_strain(np.stack([3.0 * x, zero, zero]), (H, H))
    np.testing.assert_allclose(stretch, 2 / 3 * np.sqrt(2) * 3.0)
    mixed = np.stack([2.0 * y, 3 * x, x * y + 1j * x**2])
    np.testing.assert_allclose(octahedral_shear_strain(mixed, (H, H)), oss_2d(mixed, H))


def test_same_seed_same_noise_other_seed_other_noise(wave_sample):
    params = AcquisitionParams(snr=8.0, average=2)
    first, again = acquire(wave_sample, params, 5), acquire(wave_sample, params, 5)
    other = acquire(wave_sample, params, 6)
    np.testing.assert_array_equal(first.measured, again.measured)
    np.testing.assert_array_equal(first.displacement, other.displacement)
    assert not np.allclose(first.measured[:, first.mask], other.measured[:, other.mask])
    assert first.attrs["acquisition"]["seed"] == 5


# --- voxel averaging --------------------------------------------------------------------------


def linear_at(*coords: np.ndarray) -> np.ndarray:
    """A complex linear field of ([z,] y, x) coordinates (m), one multiple per component."""
    slopes = (1e-3 + 2e-3j, -3e-3 + 1e-3j, 0.5e-3 - 1e-3j)[-len(coords) :]
    value = (2e-6 - 1e-6j) + sum(s * c for s, c in zip(slopes, coords, strict=True))
    return np.stack([value, 2 * value, -value])


def linear_field(shape: tuple[int, ...], voxel: tuple[float, ...]) -> np.ndarray:
    grids = np.meshgrid(*(centres(n, h) for n, h in zip(shape, voxel, strict=True)), indexing="ij")
    return linear_at(*grids)


def blocks(array: np.ndarray, k: int) -> np.ndarray:
    """(ny//k, nx//k, k*k) view of the blocks, trailing remainder dropped."""
    ny, nx = (n // k for n in array.shape)
    cut = array[: ny * k, : nx * k].reshape(ny, k, nx, k)
    return cut.transpose(0, 2, 1, 3).reshape(ny, nx, k * k)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_block_average_of_constant_and_linear_fields_is_exact(k):
    shape = (50, 46)
    mask = disc(shape, 0.45)
    line = linear_field(shape, (H, H))
    sample = make_sample(line, mask)
    result = acquire(sample, AcquisitionParams(average=k, offsets=0), seed=0)
    acquired_shape = (50 // k, 46 // k)
    assert result.modulus.shape == acquired_shape
    assert result.displacement.shape == (3, *acquired_shape)
    assert result.attrs["voxel_size_m"] == [k * H, k * H]
    assert result.attrs["acquisition"]["dropped_pixels"] == [50 % k, 46 % k]
    np.testing.assert_array_equal(result.mask, blocks(mask, k).all(axis=-1))
    expected = linear_field(acquired_shape, (k * H, k * H)) * result.mask
    np.testing.assert_allclose(result.displacement, expected, rtol=0, atol=1e-18)
    np.testing.assert_allclose(result.modulus[result.mask], MODULUS, rtol=1e-14)
    constant = make_sample(np.full((3, *shape), 4e-6 + 1e-6j), mask)
    averaged = acquire(constant, AcquisitionParams(average=k, offsets=0), seed=0)
    np.testing.assert_allclose(averaged.displacement[:, averaged.mask], 4e-6 + 1e-6j, rtol=1e-14)


def test_partial_volume_labels_and_majority_mask():
    shape = (32, 32)
    mask = disc(shape, 0.45)
    labels = np.where(mask, np.where(np.arange(32) < 13, 1, 2)[None, :], 0)
    modulus = np.choose(labels, [0, 2000 + 200j, 4000 + 800j])
    sample = make_sample(plane_waves(shape), mask, labels=labels, modulus=modulus)
    result = acquire(sample, AcquisitionParams(average=4, mask_fraction=0.5), seed=0)
    fraction = blocks(mask, 4).mean(axis=-1)
    np.testing.assert_array_equal(result.mask, fraction >= 0.5)
    tissue = blocks(mask, 4)
    counts = [(blocks(labels, 4) == i).sum(axis=-1) for i in (1, 2)]
    np.testing.assert_array_equal(
        result.labels, np.where(counts[1] > counts[0], 2, 1) * result.mask
    )
    mean_modulus = blocks(modulus, 4).sum(axis=-1) / np.maximum(tissue.sum(axis=-1), 1)
    np.testing.assert_allclose(result.modulus, mean_modulus * result.mask, rtol=1e-14)
    column = result.modulus[4, 3]  # columns 12..15: one pixel of region 1, three of region 2
    assert column == pytest.approx((2000 + 200j + 3 * (4000 + 800j)) / 4)


def volume_sample(shape=(12, 16, 16), voxel=(1e-3, H, H)) -> Sample:
    mask = np.broadcast_to(disc(shape[1:], 0.45), shape).copy()
    return make_sample(linear_field(shape, voxel), mask, voxel=voxel)


def test_slices_average_over_the_thickness():
    sample = volume_sample()
    params = AcquisitionParams(slices=3, slice_thickness_m=2e-3, average=2, offsets=0)
    result = acquire(sample, params, seed=0)
    assert result.displacement.shape == (3, 3, 8, 8)
    assert result.attrs["voxel_size_m"] == [2e-3, 2 * H, 2 * H]
    np.testing.assert_allclose(result.attrs["acquisition"]["slice_centres_m"], [4e-3, 6e-3, 8e-3])
    z, y, x = np.meshgrid([4e-3, 6e-3, 8e-3], centres(8, 2 * H), centres(8, 2 * H), indexing="ij")
    expected = linear_at(z, y, x) * result.mask
    np.testing.assert_allclose(result.displacement, expected, rtol=0, atol=1e-18)


def test_fractional_slice_profile_is_a_box():
    operator = slab_operator(10, 1e-3, 2, 1.5e-3)  # stack 3 mm centred: planes 3.5 .. 6.5
    np.testing.assert_allclose(operator.sum(axis=1), 1.5)
    np.testing.assert_allclose(operator[0, 3:6], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(operator[1, 5:7], [1.0, 0.5])
    sample = volume_sample((10, 8, 8))
    sample.displacement[...] = 3e-6
    params = AcquisitionParams(slices=2, slice_thickness_m=1.5e-3)
    result = acquire(sample, params, seed=0)
    np.testing.assert_allclose(result.displacement[:, result.mask], 3e-6, rtol=1e-13)


def test_strain_snr_on_a_volume():
    sample = volume_sample((12, 16, 16))
    along_z = np.exp(-0.3j * np.arange(12))[:, None, None]
    sample.displacement[...] = plane_waves((16, 16))[:, None] * along_z
    params = AcquisitionParams(slices=4, slice_thickness_m=2e-3, snr=6, snr_definition="strain")
    assert acquire(sample, params, seed=2).attrs["acquisition"]["strain_snr"] == pytest.approx(6)


# --- wrapping ---------------------------------------------------------------------------------


def test_wrap_changes_only_phases_beyond_the_limit(wave_sample):
    rng = np.random.default_rng(0)
    phases = rng.uniform(-3 * np.pi, 3 * np.pi, 1000)
    wrapped = wrap_phase(phases, np.pi)
    inside = np.abs(phases) <= np.pi
    np.testing.assert_array_equal(wrapped[inside], phases[inside])
    assert np.all(wrapped[~inside] != phases[~inside])
    assert np.all((wrapped > -np.pi) & (wrapped <= np.pi))
    np.testing.assert_allclose(np.cos(wrapped - phases), 1)

    params = AcquisitionParams(peak_phase_rad=5.0, wrap_rad=np.pi)
    result = acquire(wave_sample, params, seed=0)
    encoding = result.attrs["acquisition"]["encoding_rad_per_m"]
    beyond = (np.abs(phase_images(result.displacement, encoding, 4)) > np.pi).any(axis=0)
    changed = ~np.isclose(result.measured, result.displacement, rtol=0, atol=1e-12 * 1e-5)
    assert beyond.any() and result.attrs["acquisition"]["wrapped_fraction"] > 0
    np.testing.assert_array_equal(changed, beyond)
    gentle = acquire(wave_sample, AcquisitionParams(wrap_rad=np.pi), seed=0)  # 1 rad < π
    assert in_mask_error(gentle) < 1e-13 and gentle.attrs["acquisition"]["wrapped_fraction"] == 0


# --- parameters and errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"offsets": 2},
        {"offsets": 1},
        {"offsets": -1},
        {"snr": 0.0},
        {"snr": -3.0},
        {"snr": float("inf")},
        {"average": 0},
        {"slices": 2},
        {"wrap_rad": np.pi, "offsets": 0},
        {"components": "xw"},
        {"snr_definition": "power"},
    ],
)
def test_invalid_parameters_raise_user_error(kwargs):
    with pytest.raises(UserError):
        AcquisitionParams(**kwargs)


def test_sample_geometry_errors(wave_sample):
    with pytest.raises(UserError, match="3D store"):
        acquire(wave_sample, AcquisitionParams(slices=2, slice_thickness_m=1e-3), 0)
    with pytest.raises(UserError, match="exceed the volume depth"):
        acquire(volume_sample(), AcquisitionParams(slices=7, slice_thickness_m=2e-3), 0)
    with pytest.raises(UserError, match="no acquired voxel"):
        acquire(wave_sample, AcquisitionParams(average=40), 0)
    acquired = acquire(wave_sample, AcquisitionParams(), 0)
    with pytest.raises(UserError, match="already"):
        acquire(acquired, AcquisitionParams(), 0)


def test_component_selection(wave_sample):
    result = acquire(wave_sample, AcquisitionParams(components="zx", snr=10), 0)
    assert result.attrs["components"] == ["x", "z"]
    np.testing.assert_array_equal(
        result.displacement, wave_sample.displacement[[0, 2]] * result.mask
    )


# --- command line -----------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path, wave_sample):
    path = tmp_path / "sample.zarr"
    write_sample(path, wave_sample)
    return path


def test_cli_round_trip(tmp_path, store, capsys):
    out = tmp_path / "acquired.zarr"
    args = ["acquire", str(store), "--out", str(out), "--seed", "4", "--snr", "12"]
    assert main([*args, "--offsets", "8", "--average", "2"]) == 0
    assert "SNR 12" in capsys.readouterr().out
    result = read_sample(out)
    assert result.measured.dtype == np.complex128 and result.measured.shape == (3, 24, 24)
    facts = result.attrs["acquisition"]
    assert facts["seed"] == 4 and facts["offsets"] == 8 and facts["source"] == str(store)
    assert facts["snr"] == pytest.approx(12, rel=0.05)
    assert result.attrs["voxel_size_m"] == [2 * H, 2 * H]
    again = tmp_path / "again.zarr"
    assert main([*args, "--offsets", "8", "--average", "2", "--out", str(again)]) == 0
    np.testing.assert_array_equal(read_sample(again).measured, result.measured)
    wrap = ["--wrap-rad", "pi", "--peak-phase-rad", "4", "--snr", "inf"]
    assert (
        main(["acquire", str(store), "--out", str(tmp_path / "w.zarr"), "--seed", "1", *wrap]) == 0
    )
    facts = read_sample(tmp_path / "w.zarr").attrs["acquisition"]
    assert facts["wrap_rad"] == np.pi and facts["snr"] is None


def test_sample_without_measured_reads_none(store):
    assert read_sample(store).measured is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--snr", "0"], "SNR must be > 0"),
        (["--snr", "-2"], "SNR must be > 0"),
        (["--strain-snr", "0"], "SNR must be > 0"),
        (["--offsets", "2"], "offsets must be 0"),
        (["--offsets", "1"], "offsets must be 0"),
        (["--snr", "3", "--strain-snr", "3"], "not both"),
        (["--slices", "2", "--slice-thickness-mm", "1"], "3D store"),
        (["--seed", "-1"], "--seed must be >= 0"),
        (["--components", "q"], "components"),
        (["--wrap-rad", "pi", "--offsets", "0"], "wrapping"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_nothing_written(tmp_path, store, capsys, extra, message):
    out = tmp_path / "out.zarr"
    before = sorted(tmp_path.iterdir())
    status = main(["acquire", str(store), "--out", str(out), "--seed", "1", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("dime-pipeline acquire: error: ")
    assert message in err[0]
    assert sorted(tmp_path.iterdir()) == before


def test_cli_missing_store(tmp_path, capsys):
    missing = tmp_path / "nope.zarr"
    status = main(["acquire", str(missing), "--out", str(tmp_path / "o.zarr"), "--seed", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "no sample store" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_the_workflow_options_read_back_as_the_studys_acquisition():
    """One mapping from a study config to its acquisition (shards.acquisition_params): the
    `acquire` rule passes it as options (params_to_argv), which must read back as the same
    parameters, every field away from its default."""
    from dime_pipeline.cli import build_parser
    from dime_pipeline.commands.acquire import params_from_args, params_to_argv
    from dime_pipeline.config import validate_config
    from dime_pipeline.shards import acquisition_params, snr_label

    acquisition = {
        "snr": [None, 12.3456789, 3.0],
        "snr_definition": "strain",
        "offsets": 6,
        "average": 2,
        "mask_fraction": 0.75,
        "peak_phase_rad": 0.7,
        "wrap_rad": 3.141592653589793,
        "components": "xz",
        "compressional": 0.31,
        "bulk": 0.17,
        "compressional_speed_m_s": 1500.5,
    }
    config = validate_config({"acquisition": acquisition})
    labels = [snr_label(level) for level in config.acquisition.snr]
    assert labels == ["inf", "12.3456789", "3"]  # exact and distinct
    for level in config.acquisition.snr:
        params = acquisition_params(config, level)
        argv = ["acquire", "in.zarr", "--out", "out.zarr", "--seed", "1", *params_to_argv(params)]
        assert params_from_args(build_parser().parse_args(argv)) == params
    explicit = AcquisitionParams(slices=3, slice_thickness_m=5e-3, encoding_rad_per_m=2.5e5)
    argv = ["acquire", "a", "--out", "b", "--seed", "1", *params_to_argv(explicit)]
    back = params_from_args(build_parser().parse_args(argv))
    assert back.slice_thickness_m == pytest.approx(5e-3, rel=1e-15)
    assert back.encoding_rad_per_m == pytest.approx(2.5e5, rel=1e-15)
