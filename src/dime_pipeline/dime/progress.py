"""What ``dime-pipeline train`` says while it runs: a data line at the start, one line per epoch.

The lines go through the logger ``dime_pipeline.progress`` at INFO. The train command
(:func:`configure_console`) gives that logger its own handler writing to **stdout** (flushed at
every line), so ``--quiet`` (the root logger at WARNING, what the workflow's ``train`` rule runs)
does not silence them, and stderr keeps only warnings and, on failure, the one error line. The
rule sends both to ``results/logs/train.log``, which reads::

    … data: train 1 pack(s), 6 samples; val 1 pack(s), 6 samples; per epoch 8 crops = 2 batches
      of 4, val 4 crops = 1 batch(es); 29.6k parameters; 2 epochs on cpu
    … epoch 1/2: train/loss 0.8864, val/mse 1.223, val/r 0.4407, val/mape 1.403; 0.1 s, ETA 0.1 s
    … epoch 2/2: …
    trained 2 epoch(s), 4 step(s); last epoch val/mse 1.21, …

:func:`configure_console` also routes Lightning's messages through the root handler once (its
package adds a second console handler that repeats each of them) and silences its INFO banners
under ``--quiet``; :data:`LIGHTNING_NOISE` drops its advertisements everywhere.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

PROGRESS_LOGGER = "dime_pipeline.progress"
EPOCH_METRICS = ("val/mse", "val/r", "val/mape")  # shown in the epoch lines when logged
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # as the CLI's root handler

log = logging.getLogger(PROGRESS_LOGGER)


class _NoAdvertisements(logging.Filter):
    """Drops Lightning's tips (``💡 Tip: … try installing [litlogger] …``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


LIGHTNING_NOISE = _NoAdvertisements()


def quiet_lightning_tips() -> None:
    """Install :data:`LIGHTNING_NOISE` on the loggers Lightning's ``rank_zero_info`` uses
    (idempotent: a logger holds a filter once)."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(LIGHTNING_NOISE)


class _Stdout(logging.StreamHandler):
    """A handler writing to ``sys.stdout`` as it is at each message (pytest swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout  # not setStream: it flushes the old one, maybe closed by now
        super().emit(record)


def configure_console(quiet: bool) -> None:
    """The train command's console: progress lines always, on stdout (own handler, not
    propagated, so never twice); Lightning's messages once, through the root handler; its INFO
    messages (GPU available…, seed set, ``Trainer.fit`` stopped) not under ``quiet``."""
    progress = logging.getLogger(PROGRESS_LOGGER)
    progress.setLevel(logging.INFO)
    progress.propagate = False
    if not any(isinstance(handler, _Stdout) for handler in progress.handlers):
        handler = _Stdout()
        root = [h.formatter for h in logging.getLogger().handlers if h.formatter]
        handler.setFormatter(root[0] if root else logging.Formatter(_FORMAT))
        progress.addHandler(handler)
    # Imported by now (lightning is): its package loggers hold their own handlers.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:  # Lightning's; not pytest's, not ours
                logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.WARNING if quiet else logging.INFO)
    quiet_lightning_tips()


def log_progress(message: str) -> None:
    """One progress line (shown under ``--quiet`` too, see :func:`configure_console`)."""
    log.info("%s", message)


def duration(seconds: float) -> str:
    """``4.2 s``, ``12 min 03 s``, ``3 h 07 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _count(number: int) -> str:
    return f"{number / 1e6:.3g}M" if number >= 10**6 else f"{number / 1e3:.3g}k"


class TrainingProgress(Callback):
    """Logs the data line when training starts and one line per finished epoch (global rank 0
    only): epoch k/N, the mean training loss of the epoch's batches (those run in this process:
    a resumed epoch counts the batches after the checkpoint), :data:`EPOCH_METRICS`, the
    epoch's time (validation included) and the ETA (mean epoch time so far × epochs left; an
    epoch resumed mid-way counts at its rate per batch, scaled to a whole epoch)."""

    def __init__(self, train_packs: int, val_packs: int, resumed: str | None = None) -> None:
        self.train_packs, self.val_packs, self.resumed = train_packs, val_packs, resumed
        self.started = False
        self._epoch_start = 0.0
        self._epoch_times: list[float] = []
        self._loss_sum: torch.Tensor | None = None
        self._batches = 0
        self._val: dict[str, float] = {}

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = True
        # A run resumed mid-epoch calls no on_train_epoch_start for that epoch.
        self._epoch_start = time.monotonic()
        if trainer.is_global_zero:
            log.info("%s", self._data_line(trainer, module))

    def _data_line(self, trainer: L.Trainer, module: L.LightningModule) -> str:
        data: Any = trainer.datamodule
        train_set, val_set = data.train_set, data.val_set
        batch = data.config.batch_size
        batches = trainer.num_training_batches
        val_batches = len(data.val_dataloader())
        devices = f" per device, {trainer.world_size} devices" if trainer.world_size > 1 else ""
        params = sum(p.numel() for p in module.parameters())
        epochs = 1 if trainer.fast_dev_run else trainer.max_epochs
        line = (
            f"data: train {self.train_packs} pack(s), {len(train_set.rows)} samples; "
            f"val {self.val_packs} pack(s), {len(val_set.rows)} samples; per epoch "
            f"{len(train_set)} crops = {batches} batches of {batch}{devices}, val "
            f"{len(val_set)} crops = {val_batches} batch(es); {_count(params)} parameters; "
            f"{epochs} epochs on {trainer.strategy.root_device.type}"
        )
        if self.resumed:
            line += f"; {self.resumed}"
        if isinstance(batches, int) and batches < trainer.log_every_n_steps and trainer.loggers:
            line += (
                f"; fewer batches per epoch than trainer.log_every_n_steps "
                f"({trainer.log_every_n_steps}): no per-step train/loss rows in the CSV log"
            )
        return line

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._epoch_start = time.monotonic()
        self._loss_sum, self._batches, self._val = None, 0, {}

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, *_: Any
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):  # summed on the device: no sync per step
            loss = loss.detach().float()
            self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
            self._batches += 1

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        self._val = {k: float(metrics[k]) for k in EPOCH_METRICS if k in metrics}

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        elapsed = time.monotonic() - self._epoch_start
        whole = trainer.num_training_batches
        if isinstance(whole, int) and 0 < self._batches < whole:  # resumed mid-epoch
            self._epoch_times.append(elapsed * whole / self._batches)
        else:
            self._epoch_times.append(elapsed)
        if not trainer.is_global_zero:
            return
        total = 1 if trainer.fast_dev_run else trainer.max_epochs or 0
        done = trainer.current_epoch + 1
        fields = []
        if self._loss_sum is not None:
            fields.append(f"train/loss {float(self._loss_sum) / self._batches:.4g}")
        fields += [f"{name} {value:.4g}" for name, value in self._val.items()]
        mean = sum(self._epoch_times) / len(self._epoch_times)
        eta = mean * max(total - done, 0)
        log.info(
            "epoch %d/%d: %s; %s, ETA %s",
            done,
            total,
            ", ".join(fields) or "no metrics",
            duration(elapsed),
            duration(eta),
        )
