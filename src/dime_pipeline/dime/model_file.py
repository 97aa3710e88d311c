"""DIME's model file: what ``dime-pipeline train`` exports and inference reads.

**Model file** (``MODEL_FORMAT`` version ``MODEL_FORMAT_VERSION``): one ``torch.save`` of a dict
that ``torch.load(path, weights_only=True)`` reads (plain types and tensors only, no pickled code):

    format          "dime-pipeline/dime-model"
    format_version  1
    network         UNetConfig fields (patch_size, depth, width, predict_variance,
                    log_magnitude_offset, components; a file without the last: 1)
    normalization   {"channel_floor": float, "input": ..., "output": ...} (the last two: text)
    state_dict      DimeUNet parameters and BatchNorm statistics, float32
    metadata        free-form: training config, data, epoch, step, metrics, versions, created
    calibration     optional: {"log_std_scale": T, "band_dof": ν, ...} (``dime.calibration``):
                    σ → Tσ, bands ±t_ν(p)·Tσ

Weights are finite: ``save_model`` refuses to write NaN or inf weights and ``load_model`` to read
them; a network output that is not finite for a finite field is an error, never a map.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from dime_pipeline.dime.calibration import checked_calibration
from dime_pipeline.dime.network import DimeUNet, UNetConfig, fuse_batchnorm
from dime_pipeline.dime.normalization import DEFAULT_CHANNEL_FLOOR
from dime_pipeline.errors import UserError, config_error, one_line
from dime_pipeline.textio import atomic_file

MODEL_FORMAT = "dime-pipeline/dime-model"
MODEL_FORMAT_VERSION = 1
MODEL_ENV = "DIME_MODEL"  # overrides the shipped model when no model file is given
SHIPPED_MODEL = Path(__file__).resolve().parent / "pretrained" / "dime-default.pt"
_INPUT_TEXT = (
    "re, im of each component seen (network.components; more than one: strongest first, one "
    "common scale) minus tissue mean, / tissue std (floored); mask"
)
_OUTPUT_TEXT = "log|G*/(rho omega^2 dy dx)|, arg G* (rad), log-variance of the first"


@dataclass
class DimeModel:
    """A network ready for inference (eval mode, BatchNorm folded) and its file's facts."""

    network: DimeUNet
    config: UNetConfig
    channel_floor: float = DEFAULT_CHANNEL_FLOOR
    metadata: dict[str, Any] = field(default_factory=dict)
    log_std_scale: float = 1.0  # the confidence calibration's temperature (dime.calibration)
    band_dof: float | None = None  # and its bands' Student-t degrees of freedom (None: Gaussian)

    @property
    def calibration(self) -> dict[str, float | None]:
        return {"log_std_scale": self.log_std_scale, "band_dof": self.band_dof}

    @property
    def patch_size(self) -> int:
        return self.config.patch_size


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto": the GPU when there is one, else the CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def as_model(
    network: DimeUNet,
    channel_floor: float = DEFAULT_CHANNEL_FLOOR,
    metadata: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    log_std_scale: float = 1.0,
    band_dof: float | None = None,
) -> DimeModel:
    """Wrap an in-memory network (a copy is made: BatchNorm folded, channels-last, on device)."""
    fused = fuse_batchnorm(network).to(resolve_device(device), memory_format=torch.channels_last)
    metadata = dict(metadata or {})
    return DimeModel(fused, network.config, channel_floor, metadata, log_std_scale, band_dof)


def save_model(
    network: DimeUNet,
    path: str | Path,
    channel_floor: float = DEFAULT_CHANNEL_FLOOR,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the model file atomically (temporary sibling, then rename); UserError, nothing
    written, if a weight is NaN or inf (a diverged training)."""
    path = Path(path)
    bad = _nonfinite(network.state_dict())
    if bad is not None:
        raise UserError(f"{path}: not written: weight {bad} is NaN or inf (the training diverged)")
    payload = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "network": network.config.model_dump(),
        "normalization": {
            "channel_floor": float(channel_floor),
            "input": _INPUT_TEXT,
            "output": _OUTPUT_TEXT,
        },
        "state_dict": {k: v.detach().cpu().clone() for k, v in network.state_dict().items()},
        "metadata": _plain(metadata),
    }
    save_torch_atomic(payload, path)
    return path


def with_calibration(
    model_path: str | Path, calibration: Mapping[str, Any], out_path: str | Path
) -> Path:
    """Write the model file at ``model_path`` to ``out_path`` (atomically; it may be the same
    path) with ``calibration`` as its calibration record; weights and metadata unchanged."""
    load_model(model_path)  # every check of a model file, before anything is written
    checked_calibration(calibration, "calibration")
    payload = torch.load(Path(model_path), map_location="cpu", weights_only=True)
    payload["calibration"] = _plain(calibration)
    save_torch_atomic(payload, out_path)
    return Path(out_path)


def _plain(mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """Plain JSON types only: what ``torch.load(weights_only=True)`` reads back."""
    return json.loads(json.dumps(dict(mapping or {}), default=str))


def save_torch_atomic(payload: Any, path: str | Path) -> None:
    """``torch.save`` to a hidden sibling, renamed into place when complete. torch reports a
    failed write (a full disk) as a RuntimeError from its zip writer: that becomes the one
    line it is, with the sibling removed."""
    with atomic_file(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as error:
            raise UserError(f"{path}: cannot write it ({one_line(error)}; disk full?)") from None


def load_model(
    path: str | Path | None = None, device: str | torch.device | None = None
) -> DimeModel:
    """Read a model file (default: :func:`default_model_path`); UserError if missing or not a
    model."""
    path = Path(path) if path is not None else default_model_path()
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no such DIME model file") from None
    except Exception as error:  # a pickle or zip error: not our file
        raise UserError(f"{path}: not a DIME model file ({type(error).__name__})") from None
    found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    if found != MODEL_FORMAT:
        raise UserError(f"{path}: not a DIME model file (format {found!r}, not {MODEL_FORMAT!r})")
    if payload.get("format_version") != MODEL_FORMAT_VERSION:
        raise UserError(
            f"{path}: DIME model format version {payload.get('format_version')!r} is not "
            f"supported (this version reads {MODEL_FORMAT_VERSION})"
        )
    try:
        network = DimeUNet(UNetConfig(**payload["network"]))
        network.load_state_dict(payload["state_dict"])
        floor = float(payload["normalization"]["channel_floor"])
        scale, dof = checked_calibration(payload.get("calibration"), str(path))
    except ValidationError as error:
        raise config_error(error, f"{path}: network") from None
    except KeyError as error:
        raise UserError(f"{path}: DIME model file lacks {error}") from None
    except (RuntimeError, TypeError, ValueError) as error:  # weights of another network
        details = str(error).splitlines()  # torch: a header line, then one line per problem
        detail = details[1] if len(details) > 1 else details[0] if details else ""
        raise UserError(
            f"{path}: the weights do not fit the network the file describes "
            f"({detail.strip() or type(error).__name__})"
        ) from None
    bad = _nonfinite(network.state_dict())
    if bad is not None:
        raise UserError(f"{path}: unusable DIME model: weight {bad} is NaN or inf")
    return as_model(network, floor, payload.get("metadata"), device, scale, dof)


def _nonfinite(state: Mapping[str, torch.Tensor]) -> str | None:
    """The first floating-point tensor of ``state`` with a NaN or inf (None: all finite)."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            return name
    return None


def default_model_path() -> Path:
    """``$DIME_MODEL`` when set, else the pretrained model shipped with the package."""
    if MODEL_ENV in os.environ:
        return Path(os.environ[MODEL_ENV])
    if not SHIPPED_MODEL.is_file():
        raise UserError(
            "no DIME model given and none shipped with this installation: pass a model file "
            f"written by `dime-pipeline train` (OUT_DIR/model.pt) or set ${MODEL_ENV}"
        )
    return SHIPPED_MODEL
