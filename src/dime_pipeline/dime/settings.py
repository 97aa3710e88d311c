"""DIME's training settings, one typed model shared by ``dime-pipeline train --config FILE``
and the workflow's ``dime.training`` section (``config.DimeConfig``): a bad value is refused
where it is written, with one line naming the key, before any job runs.

Pure pydantic (no torch, no Lightning), so the study config can hold it without importing the
training stack; the network, data, module and training modules build on these models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from dime_pipeline.strictness import STRICT, Accelerator, Precision

DEFAULT_CHANNEL_FLOOR = 0.1  # per-channel scale floor of the input normalization


class UNetConfig(BaseModel):
    """Architecture hyperparameters; saved in checkpoints and in the exported model file."""

    model_config = STRICT

    patch_size: int = Field(32, ge=8, le=256, description="training and inference patch, px")
    depth: int = Field(3, ge=1, le=5, description="number of 2× down-samplings")
    width: int = Field(24, ge=4, le=256, description="channels of the first level (doubles)")
    predict_variance: bool = Field(True, description="extra channel: log-variance of log|g|")
    components: int = Field(
        1,
        ge=1,
        le=3,
        description="displacement components seen together: 1 inverts each component alone and "
        "blends the maps by wave energy; 2-3 give the network up to that many at once (strongest "
        "first, absent ones zero), so it can weigh them itself",
    )
    log_magnitude_offset: float = Field(
        2.0, description="added to channel 0: the centre of log|g| over 6–60 px wavelengths"
    )

    @property
    def out_channels(self) -> int:
        return 3 if self.predict_variance else 2


class DataConfig(BaseModel):
    """How patches are drawn and batched."""

    model_config = STRICT

    input_array: Literal["measured", "displacement"] = Field(
        "measured", description="pack array fed to the network: acquired (noisy) or clean field"
    )
    crops_per_epoch: int = Field(8192, ge=1, description="training crops per epoch")
    val_crops: int = Field(1024, ge=1, description="validation crops (the same every epoch)")
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(2, ge=0, description="DataLoader worker processes")
    min_component_fraction: float = Field(
        0.25, ge=0, le=1, description="component RMS / strongest RMS needed to be drawn"
    )
    snr_bins: int = Field(4, ge=1, description="noise levels for balancing (quantiles of SNR)")
    augment: bool = Field(True, description="phase, rotations/flips, channel gains (train)")
    channel_gain_jitter: float = Field(0.1, ge=0, lt=1, description="± relative gain per channel")
    mask_holes: float = Field(
        0.0,
        ge=0,
        le=1,
        description="odds that a training crop's mask gets holes, cuts or is cut to a thin strip "
        "(users' masks: vessels left out, thresholded outlines, thin organs)",
    )
    single_component: float = Field(
        0.5,
        ge=0,
        le=1,
        description="with network.components > 1: odds that a crop shows one component (users' "
        "one-component acquisitions); otherwise two up to all, uniformly",
    )
    ramps: float = Field(
        0.0,
        ge=0,
        le=1,
        description="odds that a training crop gets a random complex linear ramp added (what "
        "compressional waves of metres and bulk motion look like over a patch: label-preserving, "
        "∇² of a ramp is 0)",
    )
    ramp_max: float = Field(
        3.0,
        gt=0,
        le=100,
        description="largest ramp RMS relative to the crop's wave RMS (drawn log-uniformly from "
        "ramp_max/30 to ramp_max): the weak shear far from a driver under the same ramp",
    )
    preload_mb: float = Field(2048, ge=0, description="read packs into memory up to this size")


class OptimConfig(BaseModel):
    """Loss weights, AdamW and the learning-rate schedule."""

    model_config = STRICT

    lr: float = Field(2e-3, gt=0, description="peak learning rate")
    weight_decay: float = Field(1e-4, ge=0)
    schedule: Literal["cosine", "onecycle", "constant"] = Field(
        "cosine", description="cosine: linear warm-up then cosine decay to 1 % of lr"
    )
    warmup_fraction: float = Field(0.03, ge=0, lt=1, description="of all optimiser steps")
    phase_weight: float = Field(1.0, ge=0, description="weight of the loss-angle error (rad²)")
    variance_weight: float = Field(0.1, ge=0, description="weight of the confidence head's NLL")
    channel_floor: float = Field(
        DEFAULT_CHANNEL_FLOOR, ge=0, description="per-channel scale floor (normalization)"
    )


class TrainerConfig(BaseModel):
    """Lightning Trainer and checkpoint settings."""

    model_config = STRICT

    max_epochs: int = Field(40, ge=1)
    accelerator: Accelerator = Field("auto", description="auto (GPU if any), cpu, gpu, ...")
    devices: int = Field(1, ge=1, description="devices to train on (1: no distribution)")
    precision: Precision = Field("32-true", description="e.g. 32-true, bf16-mixed (GPU)")
    gradient_clip_val: float = Field(1.0, ge=0)
    log_every_n_steps: int = Field(50, ge=1)
    checkpoint_every_n_steps: int = Field(
        500, ge=0, description="also write last.ckpt every N steps (0: epoch ends only)"
    )
    monitor: str = Field("val/mse", description="metric that picks best.ckpt and model.pt")
    num_sanity_val_steps: int = Field(2, ge=0)
    deterministic: bool = Field(False, description="deterministic kernels (slower)")
    fast_dev_run: bool = Field(False, description="one batch of each; no checkpoints, no export")
    progress_bar: bool = Field(True, description="Lightning's bar, on a terminal only")
    logger: Literal["csv", "tensorboard"] = Field(
        "csv",
        description="csv: the CSV log only (always written); tensorboard: also TensorBoard "
        "event files in OUT_DIR/logs/tensorboard (needs the tensorboard package)",
    )

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_number(cls, value: Any) -> Any:
        """YAML ``precision: 32`` is an int: Lightning's 64/32/16 mean "64", "32", "16"."""
        return str(value) if type(value) is int else value


class TrainingConfig(BaseModel):
    """Everything ``dime-pipeline train`` needs besides the data paths and the output folder."""

    model_config = STRICT

    seed: int = Field(2025, ge=0)
    network: UNetConfig = UNetConfig()
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    trainer: TrainerConfig = TrainerConfig()


# Settings that change how a run executes, not what it learns: a run resumes under new values of
# these (more epochs extend a finished run; the schedule clamps), any other change is a new run.
EXECUTION_KEYS = frozenset(
    {
        "data.num_workers",
        "data.preload_mb",
        "trainer.accelerator",
        "trainer.max_epochs",
        "trainer.progress_bar",
        "trainer.logger",
        "trainer.log_every_n_steps",
        "trainer.checkpoint_every_n_steps",
        "trainer.num_sanity_val_steps",
    }
)


def changed_settings(saved: Mapping[str, Any], config: TrainingConfig) -> list[str]:
    """The dotted keys (besides ``EXECUTION_KEYS``) whose values differ between a run's saved
    settings (its ``config.yaml``; keys added since then take their defaults) and ``config``;
    ``["config.yaml"]`` when the saved settings are not a valid training config."""
    try:
        before = _flat(TrainingConfig.model_validate(saved).model_dump())
    except ValidationError:
        return ["config.yaml"]
    now = _flat(config.model_dump())
    keys = sorted(set(before) | set(now))
    return [k for k in keys if k not in EXECUTION_KEYS and before.get(k) != now.get(k)]


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def leaf_keys(model: type[BaseModel] = TrainingConfig, prefix: str = "") -> dict[str, str]:
    """Every setting's dotted key by its own name (``max_epochs`` → ``trainer.max_epochs``), for
    the names that occur once in the tree: the command line's shortcuts find their key here."""
    found: dict[str, list[str]] = {}
    for name, info in model.model_fields.items():
        dotted = f"{prefix}{name}"
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            for leaf, key in leaf_keys(nested, f"{dotted}.").items():
                found.setdefault(leaf, []).append(key)
        else:
            found.setdefault(name, []).append(dotted)
    return {name: keys[0] for name, keys in found.items() if len(keys) == 1}
