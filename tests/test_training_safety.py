"""Issue 14: training that cannot be tricked, diverge silently, misconfigure or resume inexactly.

- Checkpoints are read weights-only: a pickled payload planted in ``OUT_DIR/checkpoints`` runs
  no code, neither through ``dime-pipeline train`` nor through Lightning's own loading.
- NaN or inf weights are never exported nor loaded; a diverging run ends with one line and keeps
  its (finite) checkpoints; a model whose output is not finite gives an error, not a map.
- Trainer settings are enumerations, and the Trainer is built before ``OUT_DIR`` is written.
- A resumed run continues the crop sequence where the checkpoint left it, mid-epoch and with
  DataLoader workers too: crops and weights are those of the uninterrupted run.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from test_bad_inputs import fails
from test_dime import TINY, constant_network, make_pack, random_network
from test_dime_training import SMALL_RUN, KillAt

from dime_pipeline.cli import main
from dime_pipeline.dime import invert_dime, load_model, save_model
from dime_pipeline.dime.checkpointing import AtomicCheckpointIO
from dime_pipeline.dime.model_file import MODEL_FORMAT, MODEL_FORMAT_VERSION, as_model
from dime_pipeline.dime.module import DimeModule
from dime_pipeline.dime.settings import TrainerConfig
from dime_pipeline.dime.training import fit, load_training_config
from dime_pipeline.errors import UserError

TINY_ARGS = ["--patch-size", "16", "--depth", "2", "--width", "8"]
RUN_ARGS = ["--crops-per-epoch", "8", "--batch-size", "4", "--num-workers", "0"]


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("safety")
    make_pack(root / "train.zarr")
    return root


@pytest.fixture
def root(pack_dir: Path, tmp_path: Path) -> Path:
    """A tmp tree with its own copy of the pack (``fails`` checks the whole tree)."""
    shutil.copytree(pack_dir, tmp_path, dirs_exist_ok=True)
    return tmp_path


def train_argv(root: Path, *options: object) -> list[object]:
    pack = root / "train.zarr"
    argv = ["--quiet", "train", "--train", pack, "--val", pack, "--out-dir", root / "run"]
    return [*argv, *TINY_ARGS, *RUN_ARGS, "--accelerator", "cpu", *options]


class Payload:
    """Unpickling this creates ``marker``: what a planted checkpoint could do (os.system...)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def plant(path: Path, marker: Path) -> None:
    """A checkpoint-looking file that runs code when unpickled without weights_only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 0, "global_step": 0, "state_dict": {}, "x": Payload(marker)}, path)


# --- 1. no code from checkpoints -----------------------------------------------------------------


def test_a_planted_last_checkpoint_runs_no_code(root: Path, capsys) -> None:
    last = root / "run" / "checkpoints" / "last.ckpt"
    marker = root / "PWNED"
    plant(last, marker)
    line = fails(root, capsys, *train_argv(root, "--max-epochs", 1))
    assert not marker.exists()
    assert str(last) in line and "refused" in line and ".mkdir" in line and "--fresh" in line


def test_lightning_loads_checkpoints_weights_only(root: Path, monkeypatch) -> None:
    """Lightning's own load (``Trainer.fit(ckpt_path=...)``) goes through AtomicCheckpointIO,
    weights-only even when torch is told to default to full unpickling."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    planted, marker = root / "planted.ckpt", root / "PWNED"
    plant(planted, marker)
    with pytest.raises(UserError, match="refused"):
        AtomicCheckpointIO().load_checkpoint(planted, weights_only=False)
    trainer = L.Trainer(
        accelerator="cpu",
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        max_epochs=1,
    )
    module = DimeModule(TINY.model_dump(), {})
    with pytest.raises(UserError, match="refused"):
        trainer.fit(module, train_dataloaders=[], ckpt_path=planted)
    assert not marker.exists()


def test_a_planted_best_checkpoint_is_not_exported_from(root: Path, capsys) -> None:
    assert main([str(a) for a in train_argv(root, "--max-epochs", 1)]) == 0
    best = root / "run" / "checkpoints" / "best.ckpt"
    marker = root / "PWNED"
    plant(best, marker)
    (root / "run" / "model.pt").unlink()  # rerunning re-exports from best.ckpt
    shutil.rmtree(root / "run" / "logs")
    line = fails(root, capsys, *train_argv(root, "--max-epochs", 1))
    assert not marker.exists()
    assert str(best) in line and "refused" in line


# --- 2. non-finite weights and outputs -----------------------------------------------------------


def test_save_model_refuses_non_finite_weights(tmp_path: Path) -> None:
    network = random_network()
    with torch.no_grad():
        network.head.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(UserError, match=r"head\.weight is NaN or inf"):
        save_model(network, tmp_path / "model.pt")
    assert not list(tmp_path.iterdir())


def test_load_model_refuses_non_finite_weights(tmp_path: Path) -> None:
    network = random_network()
    state = {k: v.clone() for k, v in network.state_dict().items()}
    state["head.bias"][0] = float("inf")
    path = tmp_path / "model.pt"
    payload = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "network": TINY.model_dump(),
        "normalization": {"channel_floor": 0.1},
        "state_dict": state,
        "metadata": {},
    }
    torch.save(payload, path)
    expected = re.escape(f"{path}: unusable DIME model: weight head.bias")
    with pytest.raises(UserError, match=expected):
        load_model(path, device="cpu")


def test_a_model_with_non_finite_output_gives_an_error_not_a_map() -> None:
    network = constant_network()
    with torch.no_grad():
        network.head.bias[0] = float("nan")  # in memory: load_model would refuse the file
    field = np.exp(-0.4j * np.arange(24))[None, None, :] * np.ones((1, 20, 24))
    with pytest.raises(UserError, match="NaN or inf for a finite field"):
        invert_dime(field, None, 60.0, 1.5e-3, model=as_model(network, device="cpu"))


def test_a_diverging_run_ends_with_one_line_and_keeps_its_checkpoints(root: Path, capsys) -> None:
    config = root / "train.yaml"
    config.write_text("trainer: {checkpoint_every_n_steps: 1}\n")  # last.ckpt after every step
    argv = train_argv(root, "--config", config, "--max-epochs", 3, "--lr", "1e12")
    status = main([str(a) for a in argv])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith("dime-pipeline train: error: training diverged"), lines[0]
    run = root / "run"
    assert not (run / "model.pt").exists() and not (run / "logs").exists()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    for checkpoint in (run / "checkpoints").glob("*.ckpt"):  # what was there is kept, finite
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
        assert all(bool(v.isfinite().all()) for v in state.values() if v.is_floating_point())


# --- 3. trainer settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        (["--precision", "99"], "'trainer.precision': Input should be"),
        (["--accelerator", "quantum"], "'trainer.accelerator': Input should be"),
    ],
    ids=["precision-99", "accelerator-quantum"],
)
def test_unknown_trainer_settings_are_refused(root: Path, capsys, options, phrase) -> None:
    line = fails(root, capsys, *train_argv(root, *options))
    assert phrase in line and not (root / "run").exists()


def test_a_shell_string_as_precision_in_a_config_is_refused(root: Path, capsys) -> None:
    config = root / "train.yaml"
    config.write_text('trainer: {precision: "32-true; touch PWNED #"}\n')
    line = fails(root, capsys, *train_argv(root, "--config", config))
    assert f"training config {config} key 'trainer.precision'" in line
    assert not list(root.rglob("PWNED")) and not (root / "run").exists()


@pytest.mark.parametrize(
    ("accelerator", "present"),
    [("gpu", torch.cuda.is_available()), ("mps", torch.backends.mps.is_available())],
)
def test_a_missing_accelerator_writes_nothing(root: Path, capsys, accelerator, present) -> None:
    if present:
        pytest.skip(f"this machine has a {accelerator}")
    argv = [a for a in train_argv(root) if a != "cpu"][:-1]  # drop "--accelerator cpu"
    line = fails(root, capsys, *argv, "--accelerator", accelerator)
    assert f"accelerator '{accelerator}'" in line and "cannot run here" in line


def test_precision_given_as_a_number() -> None:
    assert TrainerConfig(precision=32).precision == "32"  # YAML `precision: 32`


# --- 4. exact resume: mid-epoch, and with DataLoader workers -------------------------------------


class Crops(L.Callback):
    """A fingerprint of every training batch, by (epoch, batch index)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[int, int], float] = {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.seen[(trainer.current_epoch, batch_idx)] = float(batch["field"].double().sum())


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # sums in a fixed order: bit-equal weights
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("workers", "every", "kill"),
    [(0, 2, 7), (2, 0, 5)],
    ids=["mid-epoch", "epoch-end-with-workers"],
)
def test_a_resumed_run_trains_on_the_same_crops_to_the_same_weights(
    pack_dir: Path, tmp_path: Path, one_thread, workers: int, every: int, kill: int
) -> None:
    """4 steps per epoch, 3 epochs; killed after step ``kill``, last.ckpt every ``every`` steps
    (0: epoch ends): mid-epoch 1 at step 6, or the end of epoch 0 at step 4."""
    pack = pack_dir / "train.zarr"
    overrides = {
        **SMALL_RUN,
        "trainer.max_epochs": 3,
        "data.num_workers": workers,
        "trainer.checkpoint_every_n_steps": every,
    }
    config = load_training_config(overrides=overrides)
    clean = Crops()
    fit(config, [pack], [pack], tmp_path / "clean", callbacks=[clean])
    out = tmp_path / "killed"
    with pytest.raises(RuntimeError, match="simulated kill"):
        fit(config, [pack], [pack], out, callbacks=[KillAt(kill)])
    resumed = Crops()
    result = fit(config, [pack], [pack], out, callbacks=[resumed])
    assert result.resumed_from is not None and result.global_step == 12
    first = min(resumed.seen)
    assert first == ((1, 2) if every else (1, 0))  # continues after the checkpoint's batch
    assert resumed.seen == {k: v for k, v in clean.seen.items() if k >= first}
    weights = [
        torch.load(run / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
        for run in (tmp_path / "clean", out)
    ]
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name
    # The same log, but for the epoch mean of train/mse over only the resumed part of epoch 1.
    logs = [log_rows(run / "logs" / "metrics.csv") for run in (tmp_path / "clean", out)]
    if every:
        for rows in logs:
            for row in rows:
                if row["epoch"] == "1" and row["train/mse"]:
                    row["train/mse"] = "resumed mid-epoch"
    assert logs[0] == logs[1]


def log_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
