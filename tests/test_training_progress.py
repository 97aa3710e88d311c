"""What ``dime-pipeline train`` shows while it runs (issue 19): a data line at the start and one
line per epoch, under ``--quiet`` too (the workflow's ``train`` rule), without Lightning's
banners; and the optional TensorBoard logger beside the CSV log.

Tiny networks and 2–3 epochs of 2 batches: a few seconds of CPU per test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_dime import make_pack
from test_dime_training import SMALL_RUN, KillAt

from dime_pipeline import cli
from dime_pipeline.dime.progress import duration
from dime_pipeline.dime.training import fit, load_training_config

CONFIG = (
    "network: {patch_size: 16, depth: 2, width: 8}\n"
    "data: {crops_per_epoch: 8, val_crops: 4, batch_size: 4, num_workers: 0}\n"
    "trainer: {num_sanity_val_steps: 0, accelerator: cpu%s}\n"
)
EPOCH_LINE = re.compile(
    r"epoch (\d+)/(\d+): train/loss \S+, val/mse \S+, val/r \S+, val/mape \S+; "
    r"\d+\.\d s, ETA \d+\.\d s$"
)
# Lightning's messages that must not reach the log of a --quiet run.
BANNERS = (
    "GPU available",
    "Total params",  # the model summary table
    "| Name",
    "litlogger",
    "Trainer.fit` stopped",
    "LeafSpec",
    "smaller than the logging interval",
    "Seed set",
)


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pack(tmp_path_factory.mktemp("progress") / "train.zarr")


def _train(
    pack: Path, out: Path, config: Path, *options: str, quiet: bool = True
) -> subprocess.CompletedProcess:
    """``dime-pipeline --quiet train …`` as the workflow runs it: stdout and stderr in one log."""
    command = [str(Path(sys.executable).parent / "dime-pipeline"), *["--quiet"] * quiet, "train"]
    command += ["--train", str(pack), "--val", str(pack), "--out-dir", str(out)]
    return subprocess.run(
        [*command, "--config", str(config), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


def test_quiet_train_log_shows_data_and_every_epoch(pack: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG % "")
    out = tmp_path / "run"
    first = _train(pack, out, config, "--max-epochs", "2")
    assert first.returncode == 0, first.stdout
    lines = first.stdout.splitlines()
    data = [line for line in lines if "dime_pipeline.progress: data:" in line]
    assert len(data) == 1, first.stdout
    assert re.search(
        r"data: train 1 pack\(s\), 6 samples; val 1 pack\(s\), 6 samples; per epoch 8 crops = "
        r"2 batches of 4, val 4 crops = 1 batch\(es\); \S+ parameters; 2 epochs on cpu",
        data[0],
    ), data[0]
    epochs = [m.groups() for line in lines if (m := EPOCH_LINE.search(line))]
    assert epochs == [("1", "2"), ("2", "2")], first.stdout
    assert lines[-1].startswith("trained 2 epoch(s)")  # the summary line comes last
    for banner in BANNERS:
        assert banner not in first.stdout, banner
    # Resumed: the data line says where it resumes, one line for the one epoch left.
    again = _train(pack, out, config, "--max-epochs", "3")
    assert again.returncode == 0, again.stdout
    assert "resuming at epoch 3, step 4" in again.stdout
    epochs = [m.groups() for line in again.stdout.splitlines() if (m := EPOCH_LINE.search(line))]
    assert epochs == [("3", "3")], again.stdout
    done = _train(pack, out, config, "--max-epochs", "3")
    assert "nothing to train" in done.stdout and not EPOCH_LINE.search(done.stdout)


def test_epoch_resumed_mid_way_reports_its_own_time(
    pack: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Lightning calls no epoch-start hook for an epoch resumed mid-way: its time and the ETA
    were once measured from the machine's boot (``9 h 32 min, ETA 658 h`` on a real resume)."""
    overrides = {**SMALL_RUN, "trainer.max_epochs": 2, "trainer.checkpoint_every_n_steps": 2}
    config = load_training_config(overrides=overrides)  # 4 steps per epoch
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated kill"):
        fit(config, [pack], [pack], out, callbacks=[KillAt(7)])
    caplog.clear()
    with caplog.at_level("INFO", logger="dime_pipeline.progress"):
        fit(config, [pack], [pack], out)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 1 and lines[0].startswith("epoch 2/2:"), lines
    # Seconds, as the tiny epoch takes, not the hours since boot.
    assert re.search(r"; \d+\.\d s, ETA 0\.0 s$", lines[0]), lines[0]


def test_lightning_messages_appear_once_without_quiet(pack: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG % "")
    result = _train(pack, tmp_path / "run", config, "--max-epochs", "1", quiet=False)
    assert result.returncode == 0, result.stdout
    log = result.stdout
    assert log.count("GPU available") == 1, log  # not repeated by Lightning's own handler
    assert log.count("epoch 1/1: train/loss") == 1, log
    assert "litlogger" not in log and "Total params" not in log


def test_tensorboard_logger_writes_event_files(pack: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed ([train] extra)")
    overrides = {**SMALL_RUN, "trainer.max_epochs": 1, "trainer.logger": "tensorboard"}
    out = tmp_path / "run"
    fit(load_training_config(overrides=overrides), [pack], [pack], out)
    assert list((out / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "logs" / "metrics.csv").is_file()  # the CSV log stays


def test_tensorboard_missing_is_one_line(
    pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard fails
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG % ", logger: tensorboard")
    out = tmp_path / "run"
    argv = ["--quiet", "train", "--train", str(pack), "--val", str(pack), "--out-dir", str(out)]
    assert cli.main([*argv, "--config", str(config)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("dime-pipeline train: error: trainer.logger: tensorboard needs")
    assert "[train]" in error
    assert not out.exists()  # checked before DIR is written


def test_bad_logger_is_one_config_error(
    pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG % ", logger: wandb")
    argv = ["train", "--train", str(pack), "--val", str(pack), "--out-dir", str(tmp_path / "r")]
    assert cli.main([*argv, "--config", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "trainer.logger" in error and "'wandb'" in error


def test_duration() -> None:
    assert duration(4.24) == "4.2 s"
    assert duration(723) == "12 min 03 s"
    assert duration(3 * 3600 + 7 * 60 + 10) == "3 h 07 min"
