"""Multi-device (DDP) training: each rank draws its own share of an epoch's crops, every epoch
new ones, and one rank exports the model. Two CPU processes stand in for two GPUs."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest
from test_dime import make_pack

from dime_pipeline.dime import load_model
from dime_pipeline.dime.data import CropKeys


@pytest.mark.parametrize("length", [16, 17])
def test_ranks_share_an_epoch_without_overlap(length: int) -> None:
    single = CropKeys(length, fixed=False)
    ranks = [CropKeys(length, fixed=False, rank=r, world_size=2) for r in range(2)]
    for epoch in (0, 3):
        for sampler in (single, *ranks):
            sampler.set_epoch(epoch)
        shares = [list(sampler) for sampler in ranks]
        assert len(shares[0]) == len(shares[1]) == length // 2  # ranks step together
        assert not set(shares[0]) & set(shares[1])
        assert set(shares[0]) | set(shares[1]) <= set(single)
    ranks[0].set_epoch(1)
    first = list(ranks[0])
    ranks[0].set_epoch(2)
    assert not set(first) & set(ranks[0])  # a new epoch draws new crops on every rank
    fixed = [list(CropKeys(8, fixed=True, rank=r, world_size=2)) for r in range(2)]
    assert sorted(fixed[0] + fixed[1]) == list(range(8))  # validation: the same 8 each epoch
    with pytest.raises(ValueError, match="rank 2"):
        CropKeys(8, fixed=False, rank=2, world_size=2)


@pytest.mark.slow
def test_two_process_ddp_training(tmp_path: Path, tool_env: dict[str, str]) -> None:
    pack = make_pack(tmp_path / "train.zarr")
    config = tmp_path / "train.yaml"
    config.write_text(
        "network: {patch_size: 16, depth: 2, width: 8}\n"
        "data: {crops_per_epoch: 32, val_crops: 8, batch_size: 4, num_workers: 0}\n"
        "trainer: {num_sanity_val_steps: 0, accelerator: cpu, devices: 2, max_epochs: 2,"
        " log_every_n_steps: 1}\n"
    )
    out = tmp_path / "run"
    command = ["dime-pipeline", "--quiet", "train", "--train", str(pack), "--val", str(pack)]
    command += ["--out-dir", str(out), "--config", str(config)]
    result = subprocess.run(
        command, capture_output=True, text=True, env=tool_env, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # rank 0 reports (progress lines, then one summary), rank 1 stays quiet
    summaries = [line for line in result.stdout.splitlines() if line.startswith("trained ")]
    assert len(summaries) == 1, result.stdout
    epochs = [line for line in result.stdout.splitlines() if " epoch " in line]
    assert len(epochs) == len(set(epochs)), result.stdout  # no line twice: one rank prints
    with open(out / "logs" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    # 32 crops per epoch in batches of 4, split over 2 ranks: 4 optimiser steps per epoch.
    assert max(int(row["step"]) for row in rows) == 2 * 4 - 1
    assert any(row["val/mse"] for row in rows)
    assert load_model(out / "model.pt").network is not None
