"""The LightningModule: masked loss in the dimensionless log space, optimiser and metrics.

Loss, averaged over the tissue pixels of a batch (``valid``):

    (μ − log|g|)² + phase_weight · (φ − arg g)²  [+ variance_weight · NLL]

where μ, φ are the network's first two channels. With ``predict_variance`` the third channel s is
the log-variance of μ, trained by the Gaussian negative log-likelihood ½(e^{−s}(μ − log|g|)² + s)
with μ detached, so the confidence head never pulls the estimate itself.

Logged: ``train/loss`` (each step), ``train/mse`` (epoch mean), ``val/loss``, ``val/mse`` (the
accuracy part of the loss), ``val/r`` (Pearson), ``val/r2`` and ``val/mape`` (a fraction, not %)
on |G*| in kPa over the tissue pixels of the validation patches, and ``val/phase_mae`` (rad).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torchmetrics import MeanAbsolutePercentageError, MeanMetric, PearsonCorrCoef, R2Score

from dime_pipeline.dime.network import DimeUNet
from dime_pipeline.dime.normalization import normalize_patches
from dime_pipeline.dime.settings import OptimConfig, UNetConfig


def masked_losses(
    output: torch.Tensor, batch: dict[str, torch.Tensor], optim: OptimConfig
) -> dict[str, torch.Tensor]:
    """Loss terms averaged over valid pixels: ``mse``, ``nll`` (0 without variance), ``loss``."""
    valid = batch["valid"]
    count = valid.sum().clamp_min(1.0)
    target = batch["target"]
    magnitude_error = (output[:, :1] - target[:, :1]).square()
    phase_error = (output[:, 1:2] - target[:, 1:2]).square()
    mse = ((magnitude_error + optim.phase_weight * phase_error) * valid).sum() / count
    nll = torch.zeros((), device=output.device)
    if output.shape[1] > 2:
        log_var = output[:, 2:3]
        detached = (output[:, :1].detach() - target[:, :1]).square()
        nll = (0.5 * (torch.exp(-log_var) * detached + log_var) * valid).sum() / count
    return {"mse": mse, "nll": nll, "loss": mse + optim.variance_weight * nll}


class DimeModule(L.LightningModule):
    """DIME training: ``network`` and ``optim`` are the dicts of UNetConfig and OptimConfig."""

    def __init__(self, network: dict[str, Any], optim: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.network_config = UNetConfig(**network)
        self.optim_config = OptimConfig(**optim)
        # channels-last: oneDNN's fast layout on CPU (×1.23 per step, ×1.81 with bf16-mixed:
        # benchmarks/bench_dime_train_step.py), also GPUs' tensor-core layout; same weights
        self.network = DimeUNet(self.network_config).to(memory_format=torch.channels_last)
        # float64 states: sums of squares over ~10⁵ pixels cancel badly in float32 (R² off by 10⁵)
        self.val_r = PearsonCorrCoef().set_dtype(torch.float64)
        self.val_r2 = R2Score().set_dtype(torch.float64)
        self.val_mape = MeanAbsolutePercentageError()
        self.val_phase_mae = MeanMetric()

    def forward(self, field: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Dimensionless prediction for raw patches (N, 2, P, P) and masks (N, 1, P, P)."""
        inputs, _ = normalize_patches(field, mask, self.optim_config.channel_floor)
        return self.network(inputs.contiguous(memory_format=torch.channels_last))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = masked_losses(self(batch["field"], batch["mask"]), batch, self.optim_config)
        size = len(batch["field"])
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=size)  # per step
        self.log(
            "train/mse",
            losses["mse"],
            on_step=False,
            on_epoch=True,
            batch_size=size,
            sync_dist=True,
        )
        return losses["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        output = self(batch["field"], batch["mask"])
        losses = masked_losses(output, batch, self.optim_config)
        size = len(batch["field"])
        # sync_dist: under DDP the epoch means cover every rank's crops (a no-op on one device)
        self.log("val/loss", losses["loss"], prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val/mse", losses["mse"], batch_size=size, sync_dist=True)
        self._update_metrics(output, batch)
        for name in ("r", "r2", "mape", "phase_mae"):
            self.log(f"val/{name}", getattr(self, f"val_{name}"), batch_size=size)

    def _update_metrics(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> None:
        """|G*| in kPa over the valid pixels: dimensionless log + log(ρω²ΔyΔx), exponentiated."""
        valid = batch["valid"][:, 0] > 0
        log_scale = batch["log_scale"][:, None, None].expand_as(valid)[valid]
        predicted = torch.exp(output[:, 0][valid].double() + log_scale) / 1e3
        true = torch.exp(batch["target"][:, 0][valid].double() + log_scale) / 1e3
        self.val_r.update(predicted, true)
        self.val_r2.update(predicted, true)
        self.val_mape.update(predicted, true)
        self.val_phase_mae.update((output[:, 1][valid] - batch["target"][:, 1][valid]).abs())

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.optim_config
        optimizer = torch.optim.AdamW(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        if cfg.schedule == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=cfg.lr,
                total_steps=total,
                pct_start=max(cfg.warmup_fraction, 0.01),
            )
        else:
            warmup = int(cfg.warmup_fraction * total)
            constant = cfg.schedule == "constant"
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: _warmup_cosine(step, warmup, total, constant)
            )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def _warmup_cosine(step: int, warmup: int, total: int, constant: bool) -> float:
    """LR factor: linear warm-up, then constant or cosine to 1 %; clamped, so resuming with more
    epochs than planned never fails (OneCycleLR raises past its total)."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if constant:
        return 1.0
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))
