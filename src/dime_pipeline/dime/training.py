"""Fit DIME from a typed training config; checkpoints, CSV logs, resume, model export.

``OUT_DIR`` after ``fit``:

    config.yaml               the resolved training config (every key)
    data.json                 what the run trains and validates on: each pack's config_hash,
                              split, rows and a digest of its sample columns
    checkpoints/best.ckpt     Lightning checkpoint with the best ``trainer.monitor`` so far
    checkpoints/last.ckpt     the latest state: end of each epoch and every
                              ``trainer.checkpoint_every_n_steps`` optimiser steps
    checkpoints/metrics.csv   the CSV log so far (rewritten atomically at every logging call)
    logs/metrics.csv          the whole CSV log across resumed runs, written when training ends
    logs/tensorboard/         TensorBoard event files, with ``trainer.logger: tensorboard``
    model.pt                  the exported model (best weights), see ``dime.model_file``

A run finds ``checkpoints/last.ckpt`` and resumes from it (epoch, step, optimiser, scheduler and
the crop sequence continue, within an epoch too: the crops already trained on are skipped), so
rerunning the same command after a kill finishes the job; a finished run exits at once and
re-exports. Checkpoints are read weights-only (``checkpointing.load_checkpoint``): no code runs
from them. Weights that become NaN or inf end the run with a UserError before a checkpoint or
a model holds them. The Trainer is built, and its settings checked, before ``OUT_DIR`` is
written. Lightning is given ``LightningEnvironment()`` explicitly: with mpi4py importable it
would otherwise pick its MPI environment and can hang.

Progress: a data line at the start and one line per epoch (``dime.progress``); Lightning's model
summary is off (the data line gives the parameter count) and its bar shows only on a terminal.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import logging
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.plugins.environments import LightningEnvironment
from lightning.pytorch.utilities import rank_zero_only
from pydantic import ValidationError
from torch.utils.data import DataLoader, Sampler

from dime_pipeline import __version__
from dime_pipeline.config import read_yaml_mapping
from dime_pipeline.datasets import Pack
from dime_pipeline.dime.calibration import calibrate_model
from dime_pipeline.dime.checkpointing import (
    AtomicCheckpointIO,
    MetricsLog,
    Row,
    load_checkpoint,
    log_history,
    log_text,
)
from dime_pipeline.dime.data import CropKeys, DimeDataModule
from dime_pipeline.dime.model_file import save_model
from dime_pipeline.dime.module import DimeModule
from dime_pipeline.dime.progress import TrainingProgress, log_progress, quiet_lightning_tips
from dime_pipeline.dime.settings import (
    TrainerConfig,
    TrainingConfig,
    UNetConfig,
    changed_settings,
)
from dime_pipeline.errors import UserError, config_error, one_line
from dime_pipeline.textio import write_text_atomic

log = logging.getLogger(__name__)

MAXIMISED_METRICS = ("val/r", "val/r2")
LIVE_LOG = Path("checkpoints") / "metrics.csv"
EXPORTED_LOG = Path("logs") / "metrics.csv"
TENSORBOARD_LOGS = Path("logs") / "tensorboard"
# what OUT_DIR receives
TRAINING_OUTPUTS = ("config.yaml", "data.json", "checkpoints", "logs", "model.pt")
_QUIET_WARNINGS = (  # expected on resume or on small machines; nothing for a user to act on
    r".*exists and is not empty.*",
    r".*does not have many workers.*",
    r".*Experiment logs directory.*",
    r".*ended before the epoch ended.*",  # _ResumingData skips the crops already trained on
    r".*LeafSpec.*",  # Lightning 2.6 on torch ≥ 2.10 (its own deprecation)
    r".*smaller than the logging interval.*",  # the progress data line says it instead
)


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
    restart_on_change: bool = False,
    callbacks: Iterable[Callback] = (),
) -> TrainingResult:
    """Train DIME on packed datasets ``train``, validate on ``val``, write ``out_dir``.

    A ``last.ckpt`` in ``out_dir`` is resumed only if its run had the same settings (bar
    ``settings.EXECUTION_KEYS``); otherwise a UserError names the keys that differ, or, with
    ``restart_on_change`` (the workflow's rule, which Snakemake reruns when they change), the
    run starts over. With ``trainer.fast_dev_run`` nothing is read from or written to ``out_dir``.
    """
    out_dir = Path(out_dir)
    dev_run = config.trainer.fast_dev_run
    last = out_dir / "checkpoints" / "last.ckpt"
    resume_from = last if resume and not dev_run and last.is_file() else None
    data = data_fingerprint(train, val)
    changed = _changed_since(out_dir, config, data) if resume_from else []
    if changed and restart_on_change:
        log_progress(f"settings changed since {last} ({', '.join(changed)}): starting over")
        resume_from = None
    history: list[Row] = []
    position = None
    resumed = None
    if resume_from is not None:
        position = _resume_position(resume_from, config)  # an unreadable one, another network
        if changed:
            shown = ", ".join(changed[:4]) + (", …" if len(changed) > 4 else "")
            raise UserError(
                f"{last} is of a run with other settings ({shown}): --fresh starts over, or "
                "use another --out-dir"
            )
        log.info("resuming from %s", resume_from)
        resumed = f"resuming at epoch {position[0] + 1}, step {position[1]} from {resume_from}"
        # The rows logged before the checkpoint; the resumed run logs the later ones again.
        history = log_history(out_dir / LIVE_LOG, position[1])
    datamodule = _ResumingData(
        train,
        val,
        config.network.patch_size,
        config.data,
        seed=config.seed,
        components=config.network.components,
        position=position,
    )
    datamodule.setup("fit")  # read the packs now: a bad one must fail before DIR is written
    L.seed_everything(config.seed, workers=True)
    module = DimeModule(config.network.model_dump(), config.optim.model_dump())
    checkpoints = [] if dev_run else _checkpoints(config, out_dir / "checkpoints")
    guards = [] if dev_run else [_FiniteWeights(out_dir, _divergence_hint(config.trainer))]
    progress = TrainingProgress(len(train), len(val), resumed)
    quiet_lightning_tips()
    # Built before DIR is written: a missing GPU or an unsupported precision fails here.
    trainer = _trainer(
        config.trainer, out_dir, [*guards, *checkpoints, progress, *callbacks], history
    )
    if not dev_run:
        out_dir.mkdir(parents=True, exist_ok=True)
        if rank_zero_only.rank == 0:  # DDP runs fit() once per process
            text = yaml.safe_dump(config.model_dump(), sort_keys=False)
            write_text_atomic(out_dir / "config.yaml", text)
            write_text_atomic(out_dir / "data.json", json.dumps(data, indent=1) + "\n")
    with warnings.catch_warnings():
        for pattern in _QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            # weights_only: AtomicCheckpointIO reads weights-only anyway; this says so twice.
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        except UserError as error:
            # From a DataLoader worker it arrives wrapped in the worker's traceback: its own
            # message is the last line.
            raise UserError(str(error).splitlines()[-1].split("UserError: ")[-1]) from None
    if resume_from is not None and not progress.started and trainer.is_global_zero:
        log_progress(f"nothing to train: {resume_from} is at epoch {trainer.current_epoch}")
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
    """The Lightning Trainer; UserError for settings this machine cannot run (no GPU for
    ``accelerator: gpu``, a precision the accelerator lacks, too many devices), and for
    ``logger: tensorboard`` without the tensorboard package."""
    if cfg.logger == "tensorboard" and not cfg.fast_dev_run:
        _require_tensorboard()
    try:
        return _lightning_trainer(cfg, out_dir, callbacks, history)
    except (MisconfigurationException, ValueError, RuntimeError, ImportError) as error:
        raise UserError(
            f"trainer settings (accelerator {cfg.accelerator!r}, devices {cfg.devices}, "
            f"precision {cfg.precision!r}) cannot run here: {one_line(error)}"
        ) from None


def _lightning_trainer(
    cfg: TrainerConfig, out_dir: Path, callbacks: list[Callback], history: Sequence[Row]
) -> L.Trainer:
    dev_run = cfg.fast_dev_run
    loggers: list[Logger] = [MetricsLog(out_dir / LIVE_LOG, history)]  # first: _finish reads it
    if cfg.logger == "tensorboard" and not dev_run:  # dev runs log nothing
        tensorboard = TensorBoardLogger(
            out_dir / TENSORBOARD_LOGS.parent,
            name=TENSORBOARD_LOGS.name,
            version="",  # no version_N subfolders: a resumed run adds event files beside
            default_hp_metric=False,
        )
        loggers.append(tensorboard)
    return L.Trainer(
        max_epochs=cfg.max_epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        precision=cfg.precision,
        plugins=[LightningEnvironment(), AtomicCheckpointIO()],
        use_distributed_sampler=False,  # CropKeys shards the crops per rank itself
        logger=False if dev_run else loggers,
        enable_checkpointing=not dev_run,
        callbacks=callbacks if dev_run else [*callbacks, LearningRateMonitor("step")],
        gradient_clip_val=cfg.gradient_clip_val or None,
        log_every_n_steps=cfg.log_every_n_steps,
        num_sanity_val_steps=cfg.num_sanity_val_steps,
        deterministic=cfg.deterministic,
        fast_dev_run=dev_run,
        enable_progress_bar=cfg.progress_bar and _on_terminal(),
        enable_model_summary=False,  # the progress data line gives the parameter count
        default_root_dir=out_dir,
    )


def _on_terminal() -> bool:
    """Whether Lightning's bar (stdout) and the log (stderr) both go to a terminal: never in a
    log file, where every redraw would be a line."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def _require_tensorboard() -> None:
    """UserError (one line) when ``trainer.logger: tensorboard`` cannot write event files."""
    try:
        import tensorboard  # noqa: F401  (Lightning's TensorBoardLogger writes with it)
    except ImportError:
        raise UserError(
            "trainer.logger: tensorboard needs the tensorboard package, part of the [train] "
            "extra: pip install 'dime-pipeline[train]' (or pip install tensorboard)"
        ) from None


def data_fingerprint(train: Sequence[str | Path], val: Sequence[str | Path]) -> dict[str, Any]:
    """What a run learns from, path-free (a moved study still resumes): per pack its
    ``config_hash`` (the workflow's data digest), split, rows and a digest of its sample columns
    (seeds, noise levels, frequencies), which change when the samples do."""

    def facts(path: str | Path) -> dict[str, Any]:
        pack = Pack(path)
        digest = hashlib.sha256()
        for name in ("seed", "snr", "frequency_hz"):
            digest.update(np.ascontiguousarray(pack.column(name)).tobytes())
        return {
            "config_hash": pack.attrs.get("config_hash"),
            "split": pack.attrs.get("split"),
            "rows": len(pack),
            "columns_sha256": digest.hexdigest()[:16],
        }

    return {"train": [facts(p) for p in train], "val": [facts(p) for p in val]}


def _changed_since(out_dir: Path, config: TrainingConfig, data: dict[str, Any]) -> list[str]:
    """What differs from the run in ``out_dir``: ``settings.changed_settings`` against its
    ``config.yaml``, and "training data" when its ``data.json`` names other packs (either file
    missing: a run from before it was written, judged by its network alone)."""
    changed: list[str] = []
    saved = out_dir / "config.yaml"
    if saved.is_file():
        try:
            raw = read_yaml_mapping(saved, "training config")
        except UserError:  # unreadable or not a mapping: not this run's settings
            raw = None
        changed += changed_settings(raw, config) if raw is not None else [saved.name]
    recorded = out_dir / "data.json"
    if recorded.is_file():
        try:
            same = json.loads(recorded.read_text(encoding="utf-8")) == data
        except (OSError, ValueError):
            same = False
        changed += [] if same else ["training data"]
    return changed


def _resume_position(checkpoint: Path, config: TrainingConfig) -> tuple[int, int]:
    """(epoch, global step) ``checkpoint`` resumes at, read weights-only; refuses a run whose
    network differs from the config's (a clear error, not a size-mismatch traceback deep inside
    Lightning)."""
    saved = load_checkpoint(checkpoint, "cannot resume from it")
    try:
        network, step = saved["hyper_parameters"]["network"], int(saved["global_step"])
        # The epoch Lightning continues in (it calls the sampler's set_epoch with this one): the
        # checkpoint's own epoch mid-epoch, the next one after an epoch end.
        progress = saved.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {})
        epoch = int(progress.get("current", {}).get("processed", saved["epoch"]))
    except Exception as error:
        raise UserError(
            f"{checkpoint}: cannot resume from it ({type(error).__name__}); "
            "use --fresh to start over"
        ) from None
    if UNetConfig(**network) != config.network:
        raise UserError(
            f"{checkpoint} was trained with network {network}, the config asks for "
            f"{config.network.model_dump()}: use another --out-dir, or --fresh to start over"
        )
    return epoch, step


class _ResumingData(DimeDataModule):
    """The datamodule of a run resumed at ``position`` (epoch, global step): its first
    training epoch starts at the crop after the last one trained on.

    Every batch is one optimiser step, so ``step − epoch × batches per epoch`` batches of that
    epoch are done (0 after an epoch end). The sampler's epoch is also set here, before
    Lightning's first ``iter()``: with DataLoader workers that call already draws keys, before
    Lightning's ``set_epoch``, and a resumed epoch would otherwise get epoch 0's crops.
    """

    def __init__(self, *args: Any, position: tuple[int, int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.position = position

    def train_dataloader(self) -> DataLoader:
        loader = super().train_dataloader()
        keys = loader.sampler
        if self.position is None or not isinstance(keys, CropKeys) or loader.batch_size is None:
            return loader
        epoch, step = self.position
        keys.set_epoch(epoch)
        done = step - epoch * len(loader)
        if 0 < done < len(loader):
            assert loader.batch_sampler is not None
            loader.batch_sampler.sampler = _SkipFirst(keys, epoch, done * loader.batch_size)
        return loader


class _SkipFirst(Sampler[int]):
    """``keys`` without the first ``skip`` keys of ``epoch`` (the crops trained on before the
    checkpoint); other epochs whole. Its length stays the epoch's: Lightning counts the batches
    done and stops the epoch after the rest."""

    def __init__(self, keys: CropKeys, epoch: int, skip: int) -> None:
        self.keys, self.epoch, self.skip = keys, epoch, skip

    def set_epoch(self, epoch: int) -> None:
        self.keys.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        keys = iter(self.keys)
        return itertools.islice(keys, self.skip, None) if self.keys.epoch == self.epoch else keys

    def __len__(self) -> int:
        return len(self.keys)


class _FiniteWeights(Callback):
    """Ends the run with a UserError as soon as a weight is NaN or inf (training diverged),
    after the optimiser step that made it and before any checkpoint holds it (Lightning runs
    checkpoint callbacks last). The loss alone is not checked: with 16-mixed precision the
    grad scaler skips steps with inf gradients and training goes on."""

    def __init__(self, out_dir: Path, hint: str) -> None:
        self.out_dir, self.hint = out_dir, hint

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *_: Any) -> None:
        bad = _nonfinite_weight(module)
        if bad is not None:
            raise UserError(
                f"training diverged at epoch {trainer.current_epoch}, step "
                f"{trainer.global_step}: weight {bad} is NaN or inf; no model written, "
                f"{self.out_dir / 'checkpoints'} keeps the last finite state; {self.hint}"
            )


def _divergence_hint(cfg: TrainerConfig) -> str:
    full = cfg.precision in ("32-true", "32", "64-true", "64")
    other = "" if full else f" or --precision 32-true (not {cfg.precision})"
    return f"lower --lr{other} and rerun with --fresh"


def _nonfinite_weight(module: torch.nn.Module) -> str | None:
    """The name of a floating-point parameter or buffer with a NaN or inf (None: all finite)."""
    tensors = {k: v for k, v in module.state_dict().items() if v.is_floating_point()}
    if not tensors:
        return None
    finite = torch.stack([v.isfinite().all() for v in tensors.values()])
    if bool(finite.all()):  # one device sync
        return None
    return list(tensors)[int((~finite).nonzero()[0])]


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
            try:
                state = load_checkpoint(best_path, "cannot export from it")["state_dict"]
            except KeyError:
                raise UserError(f"{best_path}: checkpoint without weights") from None
            module.load_state_dict(state)
        bad = _nonfinite_weight(module.network)
        if bad is not None:  # before the log: the outputs appear only complete
            raise UserError(
                f"{best_path or 'the trained network'}: weight {bad} is NaN or inf "
                f"(training diverged); no model written: {_divergence_hint(config.trainer)}"
            )
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
        if val:  # the confidence maps of the exported model are calibrated ones
            record = calibrate_model(model_path, val, model_path)
            log.info(
                "confidence calibrated on the validation packs: T = %.3g, ν = %s",
                record["log_std_scale"],
                record["band_dof"] or "∞",
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
