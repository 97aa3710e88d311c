"""DIME without Lightning: physics scaling, normalisation, network, patch data, sliding window.

Packs are built from exact fields: sums of plane waves exp(-ik·x) with k = ω√(ρ/G*) in a
homogeneous medium, and a crude two-region field (k changes at x = x0, phase continuous). They
serve plumbing, not accuracy. Everything runs on the CPU in a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dime_pipeline.datasets import write_pack
from dime_pipeline.dime import DimeUNet, UNetConfig, as_model, invert_dime, load_model, save_model
from dime_pipeline.dime.data import (
    DataConfig,
    PatchDataset,
    _pick_components,
    balanced_weights,
    noise_levels,
)
from dime_pipeline.dime.inference import dime_inversion, hann_window, window_padding
from dime_pipeline.dime.network import fuse_batchnorm, parameter_count
from dime_pipeline.dime.normalization import (
    dimensionless_log_modulus,
    modulus_from_log,
    normalize_patches,
    physics_scale,
)
from dime_pipeline.errors import UserError

TINY = UNetConfig(patch_size=16, depth=2, width=8)
FAMILIES = ["homogeneous", "two_region"]


# ----------------------------------------------------------------------------- exact fields
def modulus_for_wavelength(wavelength_px: float, frequency_hz: float, dx: float, loss: float):
    """G* = G'(1 + i·loss) whose shear wavelength is about ``wavelength_px`` pixels."""
    storage = 1000.0 * (wavelength_px * dx * frequency_hz) ** 2
    return storage * (1 + 1j * loss)


def wavenumber(modulus: complex, frequency_hz: float, density: float = 1000.0) -> complex:
    return 2 * np.pi * frequency_hz * np.sqrt(density / modulus)


def plane_waves(shape, k_px: complex, rng: np.random.Generator, n_waves: int = 3) -> np.ndarray:
    """Σ a_j exp(-i k (cosθ_j x + sinθ_j y)), pixel units, random directions and amplitudes."""
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    field = np.zeros(shape, complex)
    for _ in range(n_waves):
        theta = rng.uniform(0, 2 * np.pi)
        amplitude = rng.normal() + 1j * rng.normal()
        field += amplitude * np.exp(-1j * k_px * (np.cos(theta) * x + np.sin(theta) * y))
    return field


def exact_sample(rng: np.random.Generator, family: int, shape=(40, 40), zero_component=False):
    """(displacement (3, y, x), modulus, mask, frequency, voxel size) of one exact sample."""
    frequency, dx = rng.uniform(40, 100), rng.uniform(1e-3, 3e-3)
    g1 = modulus_for_wavelength(rng.uniform(8, 24), frequency, dx, rng.uniform(0.1, 0.4))
    modulus = np.full(shape, g1, complex)
    components = [plane_waves(shape, wavenumber(g1, frequency) * dx, rng) for _ in range(3)]
    if family == 1:  # two regions: k changes at x0, phase continuous across the interface
        g2 = 2.5 * g1
        x0 = shape[1] // 2
        x = np.arange(shape[1], dtype=float)
        k1, k2 = wavenumber(g1, frequency) * dx, wavenumber(g2, frequency) * dx
        phase = np.where(x < x0, k1 * x, k1 * x0 + k2 * (x - x0))
        wave = np.broadcast_to(np.exp(-1j * phase), shape)
        components = [(1 + 0.2j * i) * wave for i in range(3)]
        modulus[:, x0:] = g2
    if zero_component:
        components[2] = np.zeros(shape, complex)
    y, x = np.mgrid[: shape[0], : shape[1]]
    radius = 0.45 * min(shape)
    mask = (y - shape[0] / 2) ** 2 + (x - shape[1] / 2) ** 2 < radius**2
    displacement = 1e-5 * np.stack(components)
    return displacement * mask, np.where(mask, modulus, 0), mask, frequency, dx


def make_pack(path: Path, n: int = 6, shape=(40, 40), seed: int = 0, depth: int = 0) -> Path:
    """A packed dataset of exact samples, alternating families and noise levels (inf, 20)."""
    rng = np.random.default_rng(seed)
    rows = [exact_sample(rng, i % 2, shape, zero_component=i % 3 == 2) for i in range(n)]
    displacement = np.stack([r[0] for r in rows])
    modulus, mask = np.stack([r[1] for r in rows]), np.stack([r[2] for r in rows])
    snr = np.array([np.inf if i % 4 < 2 else 20.0 for i in range(n)])
    noise = rng.normal(size=displacement.shape) + 1j * rng.normal(size=displacement.shape)
    rms = np.sqrt(np.mean(np.abs(displacement) ** 2, axis=(1, 2, 3), keepdims=True))
    measured = displacement + np.where(np.isfinite(snr)[:, None, None, None], rms / 20, 0) * noise
    if depth:  # a 3D pack: the same slice repeated along z
        measured, displacement = (
            np.repeat(a[:, :, None], depth, 2) for a in (measured, displacement)
        )
        modulus, mask = (np.repeat(a[:, None], depth, 1) for a in (modulus, mask))
    voxel = np.array([[r[4]] * (3 if depth else 2) for r in rows])
    arrays = {
        "measured": measured * mask[:, None],
        "displacement": displacement,
        "modulus": modulus,
        "mask": mask,
        "labels": mask.astype(np.int16),
        "frequency_hz": np.array([r[3] for r in rows]),
        "voxel_size_m": voxel,
        "density_kg_m3": np.full(n, 1000.0),
        "snr": snr,
        "family": np.arange(n) % 2,
        "seed": np.arange(n),
    }
    sources = [f"sample{i}" for i in range(n)]
    attrs = {"split": "train", "families": FAMILIES, "config_hash": "0" * 16}
    attrs |= {"versions": {}, "sources": sources}
    write_pack(path, arrays, attrs)
    return path


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pack(tmp_path_factory.mktemp("dime") / "train.zarr")


def constant_network(log_g: float = 2.5, phase_raw: float = -1.0) -> DimeUNet:
    """A network whose output is the same everywhere, whatever the input."""
    torch.manual_seed(0)
    network = DimeUNet(TINY).eval()
    with torch.no_grad():
        network.head.weight.zero_()
        network.head.bias.copy_(torch.tensor([log_g - TINY.log_magnitude_offset, phase_raw, -3.0]))
    return network


def random_network(config: UNetConfig = TINY) -> DimeUNet:
    torch.manual_seed(1)
    return DimeUNet(config).eval()


# ----------------------------------------------------------------------------- physics scaling
def test_dimensionless_modulus_is_minus_u_over_pixel_laplacian() -> None:
    """g = G*/(ρω²ΔyΔx) = -U/∇²_px U for a plane wave: the network's target is field-only."""
    frequency, dx, modulus = 60.0, 1.5e-3, 3000 + 600j
    k_px = wavenumber(modulus, frequency) * dx
    field = plane_waves((64, 64), k_px, np.random.default_rng(3), n_waves=1)
    laplacian = (
        field[2:, 1:-1]
        + field[:-2, 1:-1]
        + field[1:-1, 2:]
        + field[1:-1, :-2]
        - 4 * field[1:-1, 1:-1]
    )
    g = -field[1:-1, 1:-1] / laplacian
    expected = modulus / physics_scale(frequency, dx, 1000.0)
    assert np.allclose(g, expected, rtol=0.02)  # 5-point stencil error (kΔx)²/12 ≈ 1 %


def test_physics_scale_round_trip_and_voxel_forms() -> None:
    scale = physics_scale(60.0, [5e-3, 1e-3, 2e-3], 1050.0)
    assert scale == pytest.approx(1050.0 * (2 * np.pi * 60) ** 2 * 1e-3 * 2e-3)
    assert physics_scale(60.0, 1.5e-3, 1000.0) == physics_scale(60.0, (1.5e-3, 1.5e-3), 1000.0)
    modulus = np.array([[3000 + 500j, 0], [8000 + 10j, 1200 + 400j]])
    log_magnitude, phase = dimensionless_log_modulus(modulus, scale)
    back = np.where(np.abs(modulus) > 0, modulus_from_log(log_magnitude, phase, scale), 0)
    assert np.allclose(back, modulus, rtol=1e-12)


# ----------------------------------------------------------------------------- normalisation
def test_normalisation_ignores_gain_offset_and_outside_pixels() -> None:
    rng = np.random.default_rng(0)
    field = torch.tensor(rng.normal(size=(4, 2, 16, 16)))
    mask = torch.tensor(rng.random((4, 1, 16, 16)) < 0.7, dtype=torch.float64)
    inputs, amplitude = normalize_patches(field, mask)
    offset = torch.tensor([3.0, -7.0])[None, :, None, None]
    changed = 4.2 * field + offset + 100.0 * (1 - mask) * torch.randn_like(field)
    inputs2, amplitude2 = normalize_patches(changed, mask)
    assert torch.allclose(inputs, inputs2, atol=1e-10)
    assert torch.allclose(amplitude2, 4.2 * amplitude)
    assert torch.all(inputs[:, :2][mask.expand(-1, 2, -1, -1) == 0] == 0)
    assert torch.equal(inputs[:, 2:], mask)


def test_normalisation_floor_keeps_an_empty_channel_small() -> None:
    field = torch.zeros(1, 2, 8, 8, dtype=torch.float64)
    field[0, 0] = torch.randn(8, 8, dtype=torch.float64)
    field[0, 1] = 1e-9 * torch.randn(8, 8, dtype=torch.float64)
    inputs, _ = normalize_patches(field, torch.ones(1, 1, 8, 8, dtype=torch.float64))
    assert inputs[0, 1].abs().max() < 1e-6  # not blown up to unit variance
    zero, amplitude = normalize_patches(torch.zeros(1, 2, 8, 8), torch.ones(1, 1, 8, 8))
    assert torch.all(zero[:, :2] == 0) and amplitude.item() == 0


# ----------------------------------------------------------------------------- network
@pytest.mark.parametrize("patch", [16, 30, 32])
def test_network_shapes_and_output_ranges(patch: int) -> None:
    config = UNetConfig(patch_size=patch, depth=2, width=8)
    output = DimeUNet(config).eval()(torch.randn(3, 3, patch, patch))
    assert output.shape == (3, 3, patch, patch)
    assert torch.all((output[:, 1] > 0) & (output[:, 1] < np.pi / 2))  # G'' ≥ 0
    no_variance = DimeUNet(UNetConfig(patch_size=patch, depth=2, width=8, predict_variance=False))
    assert no_variance(torch.randn(2, 3, patch, patch)).shape == (2, 2, patch, patch)


def test_default_network_fits_the_size_budget() -> None:
    assert parameter_count(DimeUNet()) * 4 < 20e6  # bytes as float32 < 20 MB


def test_fused_batchnorm_matches_the_eval_network() -> None:
    network = random_network()
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # non-trivial statistics
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(fuse_batchnorm(network)(x), network(x), atol=1e-4)


# ----------------------------------------------------------------------------- patch data
def test_balanced_weights_give_each_group_the_same_total() -> None:
    family = np.array(["a"] * 6 + ["b"] * 2)
    snr = np.array([np.inf, np.inf, np.inf, 10, 10, 20, np.inf, 10])
    weights = balanced_weights(family, snr, bins=4)
    levels = noise_levels(snr, 4)
    groups = {(f, lv) for f, lv in zip(family, levels, strict=True)}
    totals = [weights[(family == f) & (levels == lv)].sum() for f, lv in groups]
    assert len(groups) == 5 and np.allclose(totals, 1 / 5)
    many = noise_levels(np.geomspace(1, 100, 40), 4)  # continuous SNR: quantile bins
    assert set(many) == {0, 1, 2, 3}


def test_component_choice_skips_components_without_signal() -> None:
    rng = np.random.default_rng(0)
    fields = rng.normal(size=(3, 8, 8)) + 0j
    fields[2] = 1e-3 * fields[2]
    mask = np.ones((8, 8), bool)
    config = DataConfig(min_component_fraction=0.25)
    picks = {tuple(_pick_components(fields, mask, config, 1, rng)) for _ in range(40)}
    assert picks == {(0,), (1,)}


def test_patches_are_centred_on_tissue_deterministic_and_shaped(pack: Path) -> None:
    config = DataConfig(augment=False, preload_mb=0)  # exercise lazy Zarr reads
    dataset = PatchDataset([pack], 16, 8, seed=5, stream=0, config=config, augment=False)
    item = dataset[3]
    assert item["field"].shape == (2, 16, 16) and item["target"].shape == (2, 16, 16)
    assert item["mask"][0, 8, 8] == 1 and item["valid"][0, 8, 8] == 1  # centre in the mask
    assert torch.all(item["target"][:, item["valid"][0] == 0] == 0)
    again = PatchDataset([pack], 16, 8, seed=5, stream=0, config=config, augment=False)[3]
    assert all(torch.equal(item[k], again[k]) for k in item)
    other = dataset[4]
    assert not torch.equal(item["field"], other["field"])
    augmented = PatchDataset([pack], 16, 8, seed=5, stream=0, config=DataConfig(), augment=True)
    assert torch.equal(augmented[3]["field"], augmented[3]["field"])


def test_patches_from_a_3d_pack(tmp_path: Path) -> None:
    path = make_pack(tmp_path / "volume.zarr", n=4, shape=(24, 24), depth=3)
    dataset = PatchDataset([path], 16, 4, seed=0, stream=0, config=DataConfig(), augment=True)
    item = dataset[0]
    assert item["field"].shape == (2, 16, 16) and item["valid"].sum() > 0
    assert torch.isfinite(item["target"]).all()


# ----------------------------------------------------------------------------- sliding window
def field_and_mask(shape=(37, 45), seed=0, components=3):
    rng = np.random.default_rng(seed)
    k_px = wavenumber(3000 + 600j, 60.0) * 1.5e-3
    field = np.stack([plane_waves(shape, k_px, rng) for _ in range(components)])
    mask = np.ones(shape, bool)
    mask[10:20, 5:15] = False  # a hole
    mask[:, -3:] = False  # tissue touches three image borders, not the fourth
    mask[-1, -1] = True  # an isolated tissue pixel in the corner
    return field, mask


@pytest.mark.parametrize("stride", [8, 4, 7, 16])
def test_constant_model_gives_that_constant_in_the_whole_mask(stride: int) -> None:
    """Blending, normalisation and padding are exact: mask and image borders included."""
    field, mask = field_and_mask()
    network = constant_network(log_g=2.5, phase_raw=-1.0)
    log_g, phase, _ = network(torch.randn(1, 3, 16, 16))[0, :, 0, 0].double().tolist()
    assert log_g == pytest.approx(2.5) and phase == pytest.approx(0.5 * np.pi / (1 + np.e))
    frequency, voxel, density = 55.0, (1.2e-3, 1.4e-3), 1040.0
    maps = invert_dime(
        field, mask, frequency, voxel, density, model=as_model(network), stride=stride
    )
    expected = modulus_from_log(log_g, phase, physics_scale(frequency, voxel, density))
    assert maps["modulus"].shape == mask.shape
    assert np.array_equal(maps["valid"], mask)
    assert np.allclose(maps["modulus"][mask], expected, rtol=1e-12)
    assert np.all(maps["modulus"][~mask] == 0) and np.all(maps["confidence"][~mask] == 0)
    assert np.allclose(maps["storage"][mask], expected.real, rtol=1e-12)
    assert np.allclose(maps["loss"][mask], expected.imag, rtol=1e-12)
    assert np.allclose(maps["log_std"][mask], np.exp(-1.5), rtol=1e-6)  # s = -3: σ = e^{-1.5}


def test_sliding_window_shapes_2d_3d_and_small_images() -> None:
    model = as_model(random_network())
    field, mask = field_and_mask(shape=(20, 23))
    volume = np.stack([field, 0.5 * field], axis=1)  # (component, z, y, x)
    maps = invert_dime(volume, np.stack([mask, mask]), 60.0, 1.5e-3, model=model)
    assert maps["magnitude"].shape == (2, 20, 23) and maps["valid"][0].sum() == mask.sum()
    assert np.all(np.isfinite(maps["magnitude"])) and np.all(maps["magnitude"][maps["valid"]] > 0)
    single = invert_dime(field[0], None, 60.0, 1.5e-3, model=model)  # (y, x), mask from field
    assert single["magnitude"].shape == (20, 23)
    tiny = invert_dime(field[:, :5, :7], None, 60.0, 1.5e-3, model=model)  # smaller than a patch
    assert tiny["valid"].all()
    nan = field.copy()
    nan[:, 0, 0] = np.nan  # non-finite values count as outside the mask
    assert not invert_dime(nan, mask, 60.0, 1.5e-3, model=model)["valid"][0, 0]
    with pytest.raises(ValueError, match="mask shape"):
        invert_dime(field, mask[1:], 60.0, 1.5e-3, model=model)


def test_prediction_ignores_gain_and_constant_complex_offsets() -> None:
    model = as_model(random_network())
    field, mask = field_and_mask()
    reference = invert_dime(field, mask, 60.0, 1.5e-3, model=model, stride=4)["modulus"]
    offsets = np.array([2 + 3j, -1 + 0.5j, 4j])[:, None, None]
    for changed in (3.7 * field, 1e-9 * field, field + offsets, 0.01 * (field + offsets)):
        result = invert_dime(changed, mask, 60.0, 1.5e-3, model=model, stride=4)["modulus"]
        assert np.allclose(result, reference, rtol=1e-4)


def test_components_are_weighted_by_their_amplitude() -> None:
    model = as_model(random_network())
    field, mask = field_and_mask()
    alone = invert_dime(field[:1], mask, 60.0, 1.5e-3, model=model)["modulus"]
    silent = np.concatenate([field[:1], np.zeros_like(field[:2])])
    assert np.allclose(invert_dime(silent, mask, 60.0, 1.5e-3, model=model)["modulus"], alone)
    faint = np.concatenate([field[:1], 1e-3 * field[1:]])
    combined = invert_dime(faint, mask, 60.0, 1.5e-3, model=model)["modulus"]
    assert np.allclose(combined, alone, rtol=1e-4)  # energy share 10⁻⁶: skipped
    both = invert_dime(field, mask, 60.0, 1.5e-3, model=model)["modulus"]
    assert not np.allclose(both, alone, rtol=1e-3)


def test_model_file_round_trip_and_errors(tmp_path: Path) -> None:
    network = random_network()
    path = save_model(network, tmp_path / "model.pt", metadata={"note": "test", "epochs": 3})
    assert torch.load(path, weights_only=True)["format"] == "dime-pipeline/dime-model"
    loaded = load_model(path, device="cpu")
    assert loaded.metadata == {"note": "test", "epochs": 3} and loaded.patch_size == 16
    field, mask = field_and_mask()
    expected = invert_dime(field, mask, 60.0, 1.5e-3, model=as_model(network))["modulus"]
    assert np.allclose(invert_dime(field, mask, 60.0, 1.5e-3, model=path)["modulus"], expected)
    result = dime_inversion(field, 1.5e-3, 60.0, 1000.0, mask, model=loaded)
    assert np.allclose(result.modulus, expected) and result.valid.sum() == mask.sum()
    with pytest.raises(UserError, match="no such DIME model"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("not a model")
    with pytest.raises(UserError, match="not a DIME model"):
        load_model(tmp_path / "junk.pt")


def naive_sliding_window(model, field: np.ndarray, mask: np.ndarray, stride: int) -> np.ndarray:
    """Reference: the documented blending, one window and one component at a time."""
    size = model.patch_size
    (top, bottom, rows), (left, right, cols) = (window_padding(n, size, stride) for n in mask.shape)
    pad = ((top, bottom), (left, right))
    fields = [np.pad(c - c[mask].mean(), pad) for c in field]
    padded_mask = np.pad(mask, pad).astype(float)
    hann = np.outer(hann_window(size), hann_window(size))
    total, weighted = np.zeros(padded_mask.shape), np.zeros(padded_mask.shape)
    for r in range(rows):
        for c in range(cols):
            box = np.s_[r * stride : r * stride + size, c * stride : c * stride + size]
            m = padded_mask[box]
            if not m.any():
                continue
            patches = torch.tensor(np.stack([[f[box].real, f[box].imag] for f in fields]))
            inputs, amplitude = normalize_patches(
                patches, torch.tensor(m)[None, None].expand(len(fields), 1, -1, -1)
            )
            energy = (amplitude**2).numpy()
            if energy.sum() == 0:  # a lone tissue pixel: no wave to see
                continue
            share = energy / energy.sum()
            with torch.no_grad():
                log_g = model.network(inputs.float())[:, 0].double().numpy()
            for k in range(len(fields)):
                w = hann * m * m.mean() * share[k]
                total[box] += w
                weighted[box] += w * log_g[k]
    inside = np.s_[top : top + mask.shape[0], left : left + mask.shape[1]]
    return np.where(mask, weighted[inside] / np.where(total[inside] > 0, total[inside], 1), 0)


def test_vectorised_window_matches_a_naive_loop() -> None:
    model = as_model(random_network())
    field, mask = field_and_mask(shape=(29, 34))
    scale = physics_scale(60.0, 1.5e-3, 1000.0)
    for stride in (5, 8):
        maps = invert_dime(field, mask, 60.0, 1.5e-3, model=model, stride=stride)
        expected = naive_sliding_window(model, field, mask, stride)
        log_g = np.log(maps["magnitude"][mask] / scale)
        assert np.allclose(log_g, expected[mask], atol=1e-5)
