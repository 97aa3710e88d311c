"""Fit DIME from a typed training config; checkpoints, CSV logs, resume, model export.

``OUT_DIR`` after ``fit``:

    config.yaml               the resolved training config (every key)
    checkpoints/best.ckpt     Lightning checkpoint with the best ``trainer.monitor`` so far
    checkpoints/last.ckpt     the latest state: end of each epoch and every
                              ``trainer.checkpoint_every_n_steps`` optimiser steps
    checkpoints/metrics.csv   the CSV log so far (rewritten atomically at every logging call)
    logs/metrics.csv          the whole CSV log across resumed runs, written when training ends
    model.pt                  the exported model (best weights), see ``dime.inference``

A run finds ``checkpoints/last.ckpt`` and resumes from it (epoch, step, optimiser, scheduler and
the crop sequence continue), so rerunning the same command after a kill finishes the job; a
finished run exits at once and re-exports. Lightning is given ``LightningEnvironment()``
explicitly: with mpi4py importable it would otherwise pick its MPI environment and can hang.
"""

from __future__ import annotations

import datetime
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.plugins.environments import LightningEnvironment
from lightning.pytorch.utilities import rank_zero_only
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dime_pipeline import __version__
from dime_pipeline.config import read_yaml_mapping
from dime_pipeline.dime.checkpointing import (
    AtomicCheckpointIO,
    MetricsLog,
    Row,
    log_history,
    log_text,
)
from dime_pipeline.dime.data import DataConfig, DimeDataModule
from dime_pipeline.dime.inference import save_model
from dime_pipeline.dime.module import DimeModule, OptimConfig
from dime_pipeline.dime.network import UNetConfig
from dime_pipeline.errors import UserError, config_error
from dime_pipeline.textio import write_text_atomic

log = logging.getLogger(__name__)

MAXIMISED_METRICS = ("val/r", "val/r2")
LIVE_LOG = Path("checkpoints") / "metrics.csv"
EXPORTED_LOG = Path("logs") / "metrics.csv"
TRAINING_OUTPUTS = ("config.yaml", "checkpoints", "logs", "model.pt")  # what OUT_DIR receives
_QUIET_WARNINGS = (  # expected on resume or on small machines; nothing for a user to act on
    r".*exists and is not empty.*",
    r".*does not have many workers.*",
    r".*Experiment logs directory.*",
    r".*ended before the epoch ended.*",  # crops are random: a partial epoch's restart is harmless
    r".*LeafSpec.*",  # Lightning 2.6 on torch ≥ 2.10 (its own deprecation)
)


class TrainerConfig(BaseModel):
    """Lightning Trainer and checkpoint settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_epochs: int = Field(40, ge=1)
    accelerator: str = Field("auto", description="auto (GPU if any), cpu, gpu, ...")
    devices: int = Field(1, ge=1, description="devices to train on (1: no distribution)")
    precision: str = Field("32-true", description="e.g. 32-true, bf16-mixed (GPU)")
    gradient_clip_val: float = Field(1.0, ge=0)
    log_every_n_steps: int = Field(50, ge=1)
    checkpoint_every_n_steps: int = Field(
        500, ge=0, description="also write last.ckpt every N steps (0: epoch ends only)"
    )
    monitor: str = Field("val/mse", description="metric that picks best.ckpt and model.pt")
    num_sanity_val_steps: int = Field(2, ge=0)
    deterministic: bool = Field(False, description="deterministic kernels (slower)")
    fast_dev_run: bool = Field(False, description="one batch of each; no checkpoints, no export")
    progress_bar: bool = True


class TrainingConfig(BaseModel):
    """Everything ``dime-pipeline train`` needs besides the data paths and the output folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(2025, ge=0)
    network: UNetConfig = UNetConfig()
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    trainer: TrainerConfig = TrainerConfig()


@dataclass(frozen=True)
class TrainingResult:
    """Where a fit left its outputs, and its final metrics."""

    out_dir: Path
    model_path: Path | None
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    resumed_from: Path | None
    epochs: int
    global_step: int
    metrics: dict[str, float]
    rank: int = 0  # global rank under DDP; rank 0 exports and reports


def validate_training_config(
    raw: Mapping[str, Any], what: str = "training config", overridden: Iterable[str] = ()
) -> TrainingConfig:
    """A validated config; UserError with one line naming the key otherwise, and ``what`` it
    came from, or the command line for a key in ``overridden``."""
    try:
        return TrainingConfig.model_validate(dict(raw))
    except ValidationError as error:
        key = ".".join(str(part) for part in error.errors()[0]["loc"])
        source = "command-line training option" if key in set(overridden) else what
        raise config_error(error, source) from None


def load_training_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainingConfig:
    """Read a YAML training config (defaults when None) and apply dotted-key ``overrides``."""
    raw = {} if path is None else read_yaml_mapping(path, "training config")
    what = "training config" if path is None else f"training config {path}"
    overrides = overrides or {}
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"{what} key '{part}': must be a mapping")
        node[leaf] = value
    return validate_training_config(raw, what, overrides)


def fit(
    config: TrainingConfig,
    train: Sequence[str | Path],
    val: Sequence[str | Path],
    out_dir: str | Path,
    *,
    resume: bool = True,
    callbacks: Iterable[Callback] = (),
) -> TrainingResult:
    """Train DIME on packed datasets ``train``, validate on ``val``, write ``out_dir``.

    With ``trainer.fast_dev_run`` nothing is read from or written to ``out_dir``.
    """
    out_dir = Path(out_dir)
    dev_run = config.trainer.fast_dev_run
    last = out_dir / "checkpoints" / "last.ckpt"
    resume_from = last if resume and not dev_run and last.is_file() else None
    history: list[Row] = []
    if resume_from is not None:
        step = _resumable_step(resume_from, config)
        log.info("resuming from %s", resume_from)
        # The rows logged before the checkpoint; the resumed run logs the later ones again.
        history = log_history(out_dir / LIVE_LOG, step)
    datamodule = DimeDataModule(
        train, val, config.network.patch_size, config.data, seed=config.seed
    )
    datamodule.setup("fit")  # read the packs now: a bad one must fail before DIR is written
    L.seed_everything(config.seed, workers=True)
    if not dev_run:
        out_dir.mkdir(parents=True, exist_ok=True)
        if rank_zero_only.rank == 0:  # DDP runs fit() once per process
            text = yaml.safe_dump(config.model_dump(), sort_keys=False)
            write_text_atomic(out_dir / "config.yaml", text)
    module = DimeModule(config.network.model_dump(), config.optim.model_dump())
    checkpoints = [] if dev_run else _checkpoints(config, out_dir / "checkpoints")
    trainer = _trainer(config.trainer, out_dir, [*checkpoints, *callbacks], history)
    with warnings.catch_warnings():
        for pattern in _QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
        except UserError as error:
            # From a DataLoader worker it arrives wrapped in the worker's traceback: its own
            # message is the last line.
            raise UserError(str(error).splitlines()[-1].split("UserError: ")[-1]) from None
    best = checkpoints[0] if checkpoints else None
    return _finish(trainer, module, best, config, train, val, out_dir, resume_from)


def _checkpoints(config: TrainingConfig, directory: Path) -> list[ModelCheckpoint]:
    """best.ckpt + last.ckpt after each validation; with ``checkpoint_every_n_steps``, a second
    callback also refreshes last.ckpt within epochs, for kills mid-epoch."""
    monitor = config.trainer.monitor
    best = ModelCheckpoint(
        dirpath=directory,
        filename="best",
        monitor=monitor,
        mode="max" if monitor in MAXIMISED_METRICS else "min",
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    every = config.trainer.checkpoint_every_n_steps
    if every == 0:
        return [best]
    steps = ModelCheckpoint(
        dirpath=directory,
        filename="last",
        every_n_train_steps=every,
        save_top_k=1,
        enable_version_counter=False,
    )
    return [best, steps]


def _trainer(
    cfg: TrainerConfig, out_dir: Path, callbacks: list[Callback], history: Sequence[Row] = ()
) -> L.Trainer:
    dev_run = cfg.fast_dev_run
    return L.Trainer(
        max_epochs=cfg.max_epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        precision=cfg.precision,
        plugins=[LightningEnvironment(), AtomicCheckpointIO()],
        use_distributed_sampler=False,  # CropKeys shards the crops per rank itself
        logger=False if dev_run else MetricsLog(out_dir / LIVE_LOG, history),
        enable_checkpointing=not dev_run,
        callbacks=callbacks if dev_run else [*callbacks, LearningRateMonitor("step")],
        gradient_clip_val=cfg.gradient_clip_val or None,
        log_every_n_steps=cfg.log_every_n_steps,
        num_sanity_val_steps=cfg.num_sanity_val_steps,
        deterministic=cfg.deterministic,
        fast_dev_run=dev_run,
        enable_progress_bar=cfg.progress_bar,
        default_root_dir=out_dir,
    )


def _resumable_step(checkpoint: Path, config: TrainingConfig) -> int:
    """The global step ``checkpoint`` was saved at; refuses a run whose network differs from the
    config's (a clear error, not a size-mismatch traceback deep inside Lightning)."""
    try:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        network, step = saved["hyper_parameters"]["network"], int(saved["global_step"])
    except Exception as error:
        raise UserError(f"{checkpoint}: cannot resume from it ({type(error).__name__})") from None
    if UNetConfig(**network) != config.network:
        raise UserError(
            f"{checkpoint} was trained with network {network}, the config asks for "
            f"{config.network.model_dump()}: use another --out-dir, or --fresh to start over"
        )
    return step


def _finish(
    trainer: L.Trainer,
    module: DimeModule,
    best: ModelCheckpoint | None,
    config: TrainingConfig,
    train: Sequence[str | Path],
    val: Sequence[str | Path],
    out_dir: Path,
    resume_from: Path | None,
) -> TrainingResult:
    """Export the best weights (the last ones when no validation ran) and sum up."""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    best_path = Path(best.best_model_path) if best and best.best_model_path else None
    last_path = Path(best.last_model_path) if best and best.last_model_path else None
    model_path = None
    if best is not None and trainer.is_global_zero:  # one export, not one per DDP rank
        if best_path is not None and best_path.is_file():
            state = torch.load(best_path, map_location="cpu", weights_only=False)["state_dict"]
            module.load_state_dict(state)
        metadata = {
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "versions": {"dime_pipeline": __version__, "torch": str(torch.__version__)},
            "config": config.model_dump(),
            "train": [str(p) for p in train],
            "val": [str(p) for p in val],
            "epochs": trainer.current_epoch,
            "global_step": trainer.global_step,
            "monitor": config.trainer.monitor,
            "best_score": None if best.best_model_score is None else float(best.best_model_score),
            "last_metrics": metrics,
        }
        if isinstance(trainer.logger, MetricsLog):  # the log appears whole, at the end only
            write_text_atomic(out_dir / EXPORTED_LOG, log_text(trainer.logger.rows))
        model_path = save_model(
            module.network, out_dir / "model.pt", config.optim.channel_floor, metadata
        )
        log.info("wrote %s", model_path)
    return TrainingResult(
        out_dir=out_dir,
        model_path=model_path,
        best_checkpoint=best_path,
        last_checkpoint=last_path,
        resumed_from=resume_from,
        epochs=trainer.current_epoch,
        global_step=trainer.global_step,
        metrics=metrics,
        rank=trainer.global_rank,
    )


__all__ = [
    "TrainerConfig",
    "TrainingConfig",
    "TrainingResult",
    "fit",
    "load_training_config",
    "validate_training_config",
]
