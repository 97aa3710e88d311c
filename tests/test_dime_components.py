"""A DIME network that sees several displacement components at once (``network.components``):
which components a training crop shows, their order and common scale at the network's input,
and inference that does not depend on the order a file gives them in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_dime import TINY, field_and_mask, make_pack
from test_dime_training import SMALL_RUN

from dime_pipeline.dime import DimeUNet, as_model, invert_dime, load_model, save_model
from dime_pipeline.dime.data import PatchDataset, _pick_components
from dime_pipeline.dime.normalization import normalize_patches
from dime_pipeline.dime.settings import DataConfig, UNetConfig
from dime_pipeline.dime.training import fit, load_training_config


def joint_network(components: int = 3) -> DimeUNet:
    torch.manual_seed(2)
    return DimeUNet(TINY.model_copy(update={"components": components})).eval()


def test_training_crops_show_one_or_several_components() -> None:
    rng = np.random.default_rng(0)
    fields = rng.normal(size=(3, 8, 8)) + 0j
    fields[2] *= 1e-3  # no signal: never drawn first, but may join as one of the others
    mask = np.ones((8, 8), bool)
    always = DataConfig(single_component=1.0)
    assert {len(_pick_components(fields, mask, always, 3, rng)) for _ in range(30)} == {1}
    never = DataConfig(single_component=0.0)
    picks = [_pick_components(fields, mask, never, 3, rng) for _ in range(200)]
    assert {len(p) for p in picks} == {2, 3}
    assert all(len(set(p)) == len(p) and p[0] in (0, 1) for p in picks)
    assert any(2 in p for p in picks)
    two_slots = [_pick_components(fields, mask, never, 2, rng) for _ in range(30)]
    assert {len(p) for p in two_slots} == {2}  # never more than the network's slots


def test_joint_normalisation_orders_by_energy_with_one_common_scale() -> None:
    rng = np.random.default_rng(1)
    strong = torch.from_numpy(rng.normal(size=(2, 16, 16)))
    weak = 0.5 * torch.from_numpy(rng.normal(size=(2, 16, 16)))
    mask = torch.ones(1, 1, 16, 16, dtype=torch.float64)
    absent = torch.zeros(2, 16, 16, dtype=torch.float64)
    inputs, amplitude = normalize_patches(torch.cat([weak, absent, strong])[None], mask)
    again, _ = normalize_patches(torch.cat([absent, strong, weak])[None], mask)
    assert torch.equal(inputs, again)  # the order given does not matter
    assert inputs.shape == (1, 7, 16, 16) and torch.all(inputs[0, 4:6] == 0)  # absent: last, zero
    rms = inputs[0, :6].square().mean(dim=(-2, -1)).sqrt()
    assert rms[2:4].mean() / rms[:2].mean() == pytest.approx(
        (weak.std(dim=(-2, -1)).mean() / strong.std(dim=(-2, -1)).mean()).item(), rel=0.05
    )
    assert inputs[0, :4].square().mean().item() == pytest.approx(1.0, rel=1e-6)  # common scale
    assert amplitude.item() > 0


def test_joint_crops_are_zero_filled_and_deterministic(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "train.zarr")
    config = DataConfig(single_component=0.0)
    dataset = PatchDataset([pack], 16, 16, 3, 0, config, augment=True, components=3)
    items = [dataset[k] for k in range(16)]
    assert all(item["field"].shape == (6, 16, 16) for item in items)
    shown = [int((item["field"].abs().sum(dim=(-2, -1)) > 0).sum()) // 2 for item in items]
    assert set(shown) <= {2, 3} and len(set(shown)) == 2
    again = PatchDataset([pack], 16, 16, 3, 0, config, augment=True, components=3)[5]
    assert torch.equal(again["field"], items[5]["field"])


def test_joint_inference_ignores_component_order_and_pads_missing_ones() -> None:
    model = as_model(joint_network())
    field, mask = field_and_mask()
    maps = invert_dime(field, mask, 60.0, 1.5e-3, model=model, stride=8)
    assert np.array_equal(maps["valid"], mask) and np.all(maps["magnitude"][mask] > 0)
    shuffled = invert_dime(field[[2, 0, 1]], mask, 60.0, 1.5e-3, model=model, stride=8)
    assert np.allclose(shuffled["modulus"], maps["modulus"], rtol=1e-5)
    one = invert_dime(field[:1], mask, 60.0, 1.5e-3, model=model, stride=8)
    silent = np.concatenate([field[:1], np.zeros_like(field[1:])])
    padded = invert_dime(silent, mask, 60.0, 1.5e-3, model=model, stride=8)
    assert np.allclose(padded["modulus"], one["modulus"], rtol=1e-5)  # absent = not given
    assert not np.allclose(one["modulus"], maps["modulus"], rtol=1e-3)  # it uses the others


def test_fewer_slots_than_components_take_the_strongest_per_window() -> None:
    model = as_model(joint_network(components=2))
    field, mask = field_and_mask()
    faint = field.copy()
    faint[1] *= 1e-4
    both = invert_dime(faint[[0, 2]], mask, 60.0, 1.5e-3, model=model, stride=8)
    three = invert_dime(faint, mask, 60.0, 1.5e-3, model=model, stride=8)
    assert np.allclose(three["modulus"], both["modulus"], rtol=1e-5)


def test_joint_model_file_round_trip_and_older_files_see_one_component(tmp_path: Path) -> None:
    path = save_model(joint_network(), tmp_path / "joint.pt")
    assert load_model(path).config.components == 3
    payload = torch.load(path, weights_only=True)
    single = save_model(DimeUNet(TINY), tmp_path / "single.pt")
    older = torch.load(single, weights_only=True)
    del older["network"]["components"]  # a model file written before the setting existed
    torch.save(older, tmp_path / "older.pt")
    assert load_model(tmp_path / "older.pt").config == UNetConfig(**TINY.model_dump())
    assert payload["state_dict"]["encoders.0.0.weight"].shape[1] == 7  # 3 × (re, im) + mask


def test_a_joint_network_trains_exports_and_inverts(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "train.zarr")
    overrides = {**SMALL_RUN, "network.components": 3, "trainer.max_epochs": 1}
    result = fit(load_training_config(overrides=overrides), [pack], [pack], tmp_path / "run")
    model = load_model(result.model_path, device="cpu")
    assert model.config.components == 3
    field, mask = field_and_mask()
    maps = invert_dime(field, mask, 60.0, 1.5e-3, model=model)
    assert np.array_equal(maps["valid"], mask) and np.isfinite(maps["modulus"]).all()
