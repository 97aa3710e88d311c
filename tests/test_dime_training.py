"""DIME training with Lightning on tiny exact-field packs: overfit, fast_dev_run, resume, CLI.

Tiny networks (width 8, depth 2, 16 px patches) and a few steps keep this file at a few seconds
of CPU per test.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from test_dime import make_pack

from dime_pipeline import cli
from dime_pipeline.dime import invert_dime, load_model
from dime_pipeline.dime.data import (
    MIN_KEPT_FRACTION,
    RAMP_RANGE,
    DimeDataModule,
    PatchDataset,
    add_ramp,
    punch_mask,
)
from dime_pipeline.dime.module import DimeModule, masked_losses
from dime_pipeline.dime.settings import DataConfig, OptimConfig
from dime_pipeline.dime.training import fit, load_training_config
from dime_pipeline.errors import UserError

TINY = {"network.patch_size": 16, "network.depth": 2, "network.width": 8}
SMALL_RUN = {
    **TINY,
    "data.crops_per_epoch": 16,
    "data.val_crops": 8,
    "data.batch_size": 4,
    "data.num_workers": 0,
    "trainer.num_sanity_val_steps": 0,
    "trainer.progress_bar": False,
    "trainer.log_every_n_steps": 1,
    "trainer.accelerator": "cpu",
}


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pack(tmp_path_factory.mktemp("dime_training") / "train.zarr")


class KillAt(L.Callback):
    """Raise after ``step`` optimiser steps, like a job killed mid-epoch."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step >= self.step:
            raise RuntimeError("simulated kill")


class StartStep(L.Callback):
    """Records the global step and epoch at which training (re)starts."""

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.step, self.epoch = trainer.global_step, trainer.current_epoch


def test_overfit_one_batch(pack: Path) -> None:
    """The network can fit one batch of patches: the masked log-space error drops ≥ 20×."""
    L.seed_everything(0)
    config = load_training_config(overrides=SMALL_RUN)
    data = DimeDataModule([pack], [pack], 16, DataConfig(batch_size=8, num_workers=0), seed=0)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    module = DimeModule(config.network.model_dump(), config.optim.model_dump())
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    optim = OptimConfig()
    errors = []
    for _ in range(200):
        losses = masked_losses(module(batch["field"], batch["mask"]), batch, optim)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        errors.append(losses["mse"].item())
    assert errors[-1] < errors[0] / 20, (errors[0], errors[-1])


def test_fast_dev_run(pack: Path, tmp_path: Path) -> None:
    config = load_training_config(overrides={**SMALL_RUN, "trainer.fast_dev_run": True})
    result = fit(config, [pack], [pack], tmp_path / "run")
    assert result.global_step == 1 and result.model_path is None
    assert not list((tmp_path / "run").rglob("*.ckpt"))


def test_resume_after_a_kill_continues_epoch_step_and_exports(pack: Path, tmp_path: Path) -> None:
    overrides = {**SMALL_RUN, "trainer.max_epochs": 2, "trainer.checkpoint_every_n_steps": 2}
    config = load_training_config(overrides=overrides)  # 4 steps per epoch, 8 in all
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated kill"):
        fit(config, [pack], [pack], out, callbacks=[KillAt(7)])
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert not (out / "model.pt").exists()  # a killed run leaves no model
    start = StartStep()
    result = fit(config, [pack], [pack], out, callbacks=[start])
    assert (start.epoch, start.step) == (1, 6)  # last.ckpt of step 6, mid-epoch 1
    assert result.resumed_from == out / "checkpoints" / "last.ckpt"
    assert result.global_step == 8 and result.epochs == 2
    assert result.best_checkpoint is not None and result.best_checkpoint.name == "best.ckpt"
    with open(out / "logs" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {"val/r", "val/mape", "val/r2", "val/loss", "train/loss", "train/mse"} <= set(rows[0])
    assert max(int(row["step"]) for row in rows) >= 7  # one log across both runs
    model = load_model(result.model_path, device="cpu")
    assert model.metadata["global_step"] == 8 and model.patch_size == 16
    again = fit(config, [pack], [pack], out)  # finished: nothing more to train
    assert again.global_step == 8


def test_resume_refuses_a_different_network(pack: Path, tmp_path: Path) -> None:
    config = load_training_config(overrides={**SMALL_RUN, "data.crops_per_epoch": 4})
    fit(config, [pack], [pack], tmp_path / "run")
    wider = load_training_config(overrides={**SMALL_RUN, "network.width": 12})
    with pytest.raises(UserError, match="--fresh"):
        fit(wider, [pack], [pack], tmp_path / "run")


def test_resume_only_under_the_same_settings(pack: Path, tmp_path: Path) -> None:
    """A changed setting or other training packs are refused, named (or start over with
    ``restart_on_change``, as the workflow asks); more epochs resume."""
    out = tmp_path / "run"
    one_epoch = {**SMALL_RUN, "data.crops_per_epoch": 8, "trainer.max_epochs": 1}
    config = load_training_config(overrides=one_epoch)
    first = fit(config, [pack], [pack], out)
    changed = load_training_config(overrides={**one_epoch, "optim.lr": 1e-3})
    with pytest.raises(UserError, match=r"other settings \(optim\.lr\): --fresh"):
        fit(changed, [pack], [pack], out)
    restarted = fit(changed, [pack], [pack], out, restart_on_change=True)
    assert restarted.resumed_from is None and restarted.global_step == first.global_step
    assert yaml.safe_load((out / "config.yaml").read_text())["optim"]["lr"] == 1e-3
    longer = changed.model_copy(
        update={"trainer": changed.trainer.model_copy(update={"max_epochs": 2})}
    )
    extended = fit(longer, [pack], [pack], out)
    assert extended.resumed_from is not None and extended.global_step == 2 * first.global_step
    other = make_pack(tmp_path / "other.zarr", n=4)  # other samples: a new run
    with pytest.raises(UserError, match=r"other settings \(training data\)"):
        fit(longer, [other], [pack], out)


def test_train_command_writes_a_usable_model(
    pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(
        "network: {patch_size: 16, depth: 2, width: 8}\n"
        "data: {crops_per_epoch: 8, val_crops: 4, batch_size: 4, num_workers: 0}\n"
        "trainer: {num_sanity_val_steps: 0, accelerator: cpu}\n"
    )
    out = tmp_path / "run"
    argv = ["--quiet", "train", "--train", str(pack), "--val", str(pack), "--out-dir", str(out)]
    assert cli.main([*argv, "--config", str(config), "--max-epochs", "1", "--seed", "3"]) == 0
    assert "model" in capsys.readouterr().out
    field = np.exp(-0.4j * np.arange(24))[None, None, :] * np.ones((1, 20, 24))
    maps = invert_dime(field, None, 60.0, 1.5e-3, model=out / "model.pt")
    assert maps["valid"].all() and np.all(maps["magnitude"] > 0)
    assert cli.main([*argv, "--config", str(config), "--width", "0"]) == 2
    assert "network.width" in capsys.readouterr().err
    missing = ["train", "--train", str(tmp_path / "none.zarr"), "--val", str(pack)]
    assert cli.main([*missing, "--out-dir", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("dime-pipeline train: error:") and "\n" not in error


def test_crops_do_not_depend_on_workers_or_preloading(pack: Path) -> None:
    """Crops are a function of (seed, key): 2 worker processes reading Zarr lazily give the
    same epoch as the main process reading from memory."""
    batches = []
    for workers, preload in [(0, 2048.0), (2, 0.0)]:
        config = DataConfig(num_workers=workers, preload_mb=preload, batch_size=4)
        data = DimeDataModule([pack], [pack], 16, config.model_copy(update={"crops_per_epoch": 8}))
        data.setup("fit")
        loader = data.train_dataloader()
        loader.sampler.set_epoch(3)
        batches.append(torch.cat([batch["field"] for batch in loader]))
    assert torch.equal(batches[0], batches[1])


def test_punched_masks_are_subsets_and_keep_the_field(pack: Path) -> None:
    """``mask_holes``: the same crop keys give the same targets, and masks (and the loss's valid
    pixels) that lose holes, cuts or all but a strip."""
    crops = []
    for odds in (0.0, 1.0):
        config = DataConfig(mask_holes=odds, channel_gain_jitter=0.0)
        crops.append(PatchDataset([pack], 16, 64, 5, 0, config, augment=True))
    changed = 0
    for key in range(64):
        plain, punched = crops[0][key], crops[1][key]
        assert torch.equal(plain["target"], punched["target"])
        full, kept = plain["mask"] > 0, punched["mask"] > 0
        assert not (kept & ~full).any()
        assert not ((punched["valid"] > 0) & ~kept).any()
        assert kept.sum() >= min(MIN_KEPT_FRACTION * full.sum(), 2 * 16)
        changed += int(not torch.equal(full, kept))
    assert changed >= 32  # most crops are punched (the rest would have lost too much)


def test_punch_mask_draws_holes_cuts_and_strips() -> None:
    rng = np.random.default_rng(0)
    mask = np.ones((32, 32), bool)
    kept = np.array([punch_mask(mask, rng).mean() for _ in range(200)])
    assert (kept == 1.0).mean() < 0.05  # unchanged only when a strip clips a corner
    strips = kept < 0.6  # a strip ≤ 12 px wide keeps under 55 %; holes and cuts over 70 %
    assert 0.15 < strips.mean() < 0.35 and kept[strips].min() >= 2 * 32 / 32**2
    assert kept[~strips].min() >= 0.7
    assert not punch_mask(np.zeros((32, 32), bool), rng).any()


def test_ramps_are_linear_over_the_tissue_and_scaled_to_the_wave() -> None:
    """``add_ramp``: what it adds is b·x + c·y on the tissue (its discrete Laplacian is 0), zero
    elsewhere, with an RMS between ramp_max / RAMP_RANGE and ramp_max times the wave's."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[:32, :32]
    field = np.exp(1j * 2 * np.pi * (x + 0.5 * y) / 9.0).astype(np.complex64)
    mask = (y - 15.5) ** 2 + (x - 13) ** 2 < 13**2
    ratios = []
    for _ in range(100):
        added = add_ramp(field, mask, rng, 3.0) - field
        assert added.dtype == np.complex64 and not added[~mask].any()
        interior = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1]
        interior &= mask[1:-1, :-2] & mask[1:-1, 2:]
        laplacian = (
            added[:-2, 1:-1]
            + added[2:, 1:-1]
            + added[1:-1, :-2]
            + added[1:-1, 2:]
            - 4 * added[1:-1, 1:-1]
        )
        scale = np.abs(added[mask]).max()
        assert np.abs(laplacian[interior]).max() < 1e-5 * scale
        wave = np.sqrt(np.mean(np.abs(field[mask] - field[mask].mean()) ** 2))
        ratios.append(np.sqrt(np.mean(np.abs(added[mask] - added[mask].mean()) ** 2)) / wave)
    ratios = np.array(ratios)
    assert ratios.min() >= 3.0 / RAMP_RANGE * 0.5 and ratios.max() <= 3.0 * 1.5
    assert ratios.max() > 1.0 and ratios.min() < 0.5  # the whole range is drawn


def test_ramped_crops_keep_their_masks_and_targets(pack: Path) -> None:
    """``ramps``: the same crop keys give the same targets and masks and a field changed by a
    ramp; with ramps off no extra random draw moves the other augmentations."""
    crops = []
    for odds in (0.0, 1.0):
        config = DataConfig(ramps=odds, channel_gain_jitter=0.0)
        crops.append(PatchDataset([pack], 16, 32, 5, 0, config, augment=True))
    for key in range(32):
        plain, ramped = crops[0][key], crops[1][key]
        assert torch.equal(plain["target"], ramped["target"])
        assert torch.equal(plain["mask"], ramped["mask"])
        assert not torch.equal(plain["field"], ramped["field"])


def test_inference_package_does_not_import_lightning() -> None:
    code = "import sys, dime_pipeline.dime; print('lightning' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False"
