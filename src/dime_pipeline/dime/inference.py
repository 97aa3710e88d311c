"""DIME inference: the vectorised sliding window over a slice or volume (the model file it
reads: :mod:`dime_pipeline.dime.model_file`).

**Sliding window.** Per 2D slice and component (a network that sees K components gets each
window's K strongest together instead, and q_c below is 1): the field is zero-padded by P/2
(outside the image = outside the mask, as in training), P×P windows every ``stride`` pixels
that touch the mask are normalised (tissue pixels only) and run through the network in batches
on the GPU if there is one; predictions are blended in the dimensionless log space with weights

    w = hann(i)·hann(j) · mask · (tissue fraction of the window) · q_c,
    hann(i) = sin²(π(i + ½)/P) + 10⁻³,   q_c = a_c² / Σ_c' a_c'²,

where a_c is component c's RMS amplitude in the window: components are combined by their share
of the wave energy, window by window, so a component with no signal there hardly counts, and
sin² windows at stride P/2 sum to a constant (no ripple). Windows are strided views
(``Tensor.unfold``) evaluated in batches; their weighted predictions are scatter-added into the
image (the ``F.fold`` sum without keeping every window in memory).
The blended variance (mean of the predicted variances plus the spread of the overlapping
predictions) gives σ of ln|G*|, times the model's calibrated temperature (``dime.calibration``),
and the confidence exp(−σ) ∈ (0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dime_pipeline.dime.model_file import DimeModel, load_model
from dime_pipeline.dime.normalization import (
    modulus_from_log,
    normalize_patches,
    physics_scale,
)
from dime_pipeline.dime.wavelength import adaptive_prediction
from dime_pipeline.errors import UserError

HANN_FLOOR = 1e-3


def hann_window(size: int) -> np.ndarray:
    """sin²(π(i + ½)/P) + floor: smooth, never zero, a partition of unity at stride P/2."""
    return np.sin(np.pi * (np.arange(size) + 0.5) / size) ** 2 + HANN_FLOOR


def window_padding(length: int, patch: int, stride: int) -> tuple[int, int, int]:
    """(before, after, windows): pad P/2 before and at least P/2 after, windows on a grid."""
    before = patch // 2
    windows = math.ceil(max(length + 2 * before - patch, 0) / stride) + 1
    return before, patch + (windows - 1) * stride - length - before, windows


def _prepared(field: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(C, 2, H, W) float32: tissue mean removed, zero outside the mask, peak 1.

    Per-window normalisation makes this a no-op in exact arithmetic; it keeps float32 accurate
    for any unit and for offsets much larger than the wave.
    """
    channels = np.stack([field.real, field.imag], axis=1).astype(np.float64)
    if mask.any():
        channels -= channels[:, :, mask].mean(axis=-1)[..., None, None]
    channels *= mask
    peak = np.abs(channels).max()
    return (channels / peak if peak > 0 else channels).astype(np.float32)


@torch.inference_mode()
def predict_slice(
    model: DimeModel,
    field: np.ndarray,
    mask: np.ndarray,
    stride: int,
    batch_size: int = 256,
    min_component_weight: float = 0.02,
) -> dict[str, np.ndarray]:
    """Blended dimensionless prediction for one slice: field (C, H, W) complex, mask (H, W).

    Returns ``log_magnitude`` (log|g|), ``phase`` (rad), ``variance`` (of log|g|), ``weight``
    (blending weight; 0 where no window saw tissue with signal), each (H, W) float64.
    """
    device = next(model.network.parameters()).device
    size, (height, width) = model.patch_size, mask.shape
    top, bottom, _ = window_padding(height, size, stride)
    left, right, cols = window_padding(width, size, stride)
    pad = (left, right, top, bottom)
    x = F.pad(torch.from_numpy(_prepared(field, mask)).to(device), pad)
    m = F.pad(torch.from_numpy(mask.astype(np.float32)).to(device), pad)
    windows = x.unfold(2, size, stride).unfold(3, size, stride).flatten(2, 3)  # views, no copy
    mask_windows = m.unfold(0, size, stride).unfold(1, size, stride).flatten(0, 1)
    tissue = mask_windows.sum(dim=(1, 2))
    selected = torch.nonzero(tissue > 0).flatten()
    hann = torch.from_numpy(np.outer(hann_window(size), hann_window(size)).astype(np.float32))
    padded = (top + height + bottom, left + width + right)
    sums = torch.zeros((4, padded[0] * padded[1]), dtype=torch.float64, device=device)
    offsets = (torch.arange(size)[:, None] * padded[1] + torch.arange(size)).flatten().to(device)
    runs = len(field) if model.config.components == 1 else 1  # network calls per window
    chunk = max(1, batch_size // runs)
    for start in range(0, len(selected), chunk):
        index = selected[start : start + chunk]
        corner = (index // cols) * stride * padded[1] + (index % cols) * stride
        _accumulate(
            model,
            windows[:, :, index],
            mask_windows[index],
            tissue[index] / size**2,
            corner[:, None] + offsets,
            hann.to(device),
            sums,
            min_component_weight,
        )
    if not bool(sums.isfinite().all()):  # the field is finite (_checked): the model is not
        raise UserError(
            "the DIME model gave NaN or inf for a finite field: the model is unusable "
            "(diverged or damaged weights)"
        )
    image = sums.reshape(4, *padded)[:, top : top + height, left : left + width]
    return _blended(image.cpu().numpy(), mask, model.config.log_magnitude_offset)


def _accumulate(
    model: DimeModel,
    windows: torch.Tensor,
    masks: torch.Tensor,
    fraction: torch.Tensor,
    pixels: torch.Tensor,
    hann: torch.Tensor,
    sums: torch.Tensor,
    min_component_weight: float,
) -> None:
    """Run the network on windows (C, 2, b, P, P); scatter-add the weighted predictions into
    ``sums`` (4, padded pixels) at ``pixels`` (b, P²), the windows' flat pixel indices.

    A one-component network runs once per component and window, weighted by the component's
    energy share (below ``min_component_weight``: skipped); a network that sees K components
    runs once per window on its K strongest. Summing straight into the image (rather than
    keeping every window for one ``F.fold``) keeps memory at one image whatever the stride.
    """
    n_components, _, count, size, _ = windows.shape
    if model.config.components == 1:
        field = windows.permute(0, 2, 1, 3, 4).reshape(n_components * count, 2, size, size)
        mask = masks[None].expand(n_components, -1, -1, -1).reshape(-1, 1, size, size)
        inputs, amplitude = normalize_patches(field, mask, model.channel_floor)
        energy = amplitude.square().reshape(n_components, count)
        share = (energy / energy.sum(dim=0).clamp_min(1e-30)).flatten()
        keep = share >= min_component_weight
        factor = fraction.repeat(n_components) * share
        pixels = pixels.repeat(n_components, 1)
    else:
        mask = masks[:, None]
        field = _slotted(windows, masks, model.config.components)
        inputs, amplitude = normalize_patches(field, mask, model.channel_floor)
        keep, factor = amplitude > 0, fraction
    if not keep.any():
        return
    output = model.network(inputs[keep].contiguous(memory_format=torch.channels_last)).double()
    weight = hann * mask[keep] * factor[keep, None, None, None]
    centred = output[:, :1] - model.config.log_magnitude_offset  # small, for the variance sum
    variance = output[:, 2:3].exp() if output.shape[1] > 2 else torch.zeros_like(centred)
    terms = [weight, weight * output[:, :1], weight * output[:, 1:2]]
    terms.append(weight * (variance + centred.square()))
    values = torch.cat(terms, dim=1).flatten(2).permute(1, 0, 2).flatten(1)  # (4, kept·P²)
    sums.index_add_(1, pixels[keep].flatten(), values)


def _slotted(windows: torch.Tensor, masks: torch.Tensor, slots: int) -> torch.Tensor:
    """(b, 2·slots, P, P) network field from windows (C, 2, b, P, P): each window's ``slots``
    most energetic components (by RMS about the tissue mean), or all of them and zeros."""
    n_components, _, count, size, _ = windows.shape
    if n_components > slots:
        tissue = masks.sum(dim=(-2, -1)).clamp_min(1.0)
        inside = windows * masks
        mean = inside.sum(dim=(-2, -1)) / tissue
        energy = (inside.square().sum(dim=(-2, -1)) / tissue - mean.square()).sum(dim=1)
        top = energy.topk(slots, dim=0).indices  # (slots, b)
        windows = windows.gather(0, top[:, None, :, None, None].expand(-1, 2, -1, size, size))
    field = windows.permute(2, 0, 1, 3, 4).reshape(count, -1, size, size)
    return F.pad(field, (0, 0, 0, 0, 0, 2 * slots - field.shape[1]))


def _blended(folded: np.ndarray, mask: np.ndarray, offset: float) -> dict[str, np.ndarray]:
    """Weighted means from the folded sums (weight, Σwμ, Σwφ, Σw(σ² + (μ − offset)²))."""
    weight = np.where(mask, folded[0], 0.0)
    valid = weight > 0
    safe = np.where(valid, weight, 1.0)
    log_magnitude = np.where(valid, folded[1] / safe, 0.0)
    phase = np.where(valid, folded[2] / safe, 0.0)
    second = folded[3] / safe - (log_magnitude - offset) ** 2
    variance = np.where(valid, np.maximum(second, 0.0), 0.0)
    return {"log_magnitude": log_magnitude, "phase": phase, "variance": variance, "weight": weight}


def _checked(
    displacement: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(field (C, Z, H, W) complex, mask (Z, H, W) bool, spatial shape); non-finite → masked."""
    field = np.asarray(displacement)
    if field.ndim == 2:
        field = field[None]
    if field.ndim not in (3, 4) or min(field.shape[-2:]) < 1:
        raise ValueError(f"displacement must have axes (component, [z,] y, x), got {field.shape}")
    spatial = field.shape[1:]
    volume = field.reshape(field.shape[0], -1, *spatial[-2:])
    finite = np.isfinite(volume).all(axis=0)
    if mask is None:
        region = (volume != 0).any(axis=0)
    else:
        region = np.asarray(mask, dtype=bool)
        if region.shape != spatial:
            raise ValueError(f"mask shape {region.shape} != displacement spatial shape {spatial}")
        region = region.reshape(finite.shape)
    volume = np.where(finite, volume, 0).astype(np.complex128)
    return volume, region & finite, spatial


def invert_dime(
    displacement: np.ndarray,
    mask: np.ndarray | None,
    frequency_hz: float,
    voxel_size_m: float | Sequence[float],
    density_kg_m3: float = 1000.0,
    *,
    model: DimeModel | str | Path | None = None,
    stride: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    min_component_weight: float = 0.02,
    adapt: bool = True,
) -> dict[str, np.ndarray]:
    """Complex shear modulus maps from a first-harmonic field with DIME.

    displacement  complex, (component, [z,] y, x) (or (y, x)), any unit; 3D volumes are
                  inverted slice by slice; non-finite values count as outside the mask
    mask          bool on the spatial grid; None: where the field is nonzero
    voxel_size_m  one edge or per axis ([z,] y, x); only the in-plane (y, x) sizes are used
    model         a DimeModel, a model file, or None for ``$DIME_MODEL``
    stride        window step in pixels (default P/2: sin² windows then sum to a constant)
    batch_size    windows per network call (default 256 on a CPU, 2048 on a GPU)
    device        "cpu", "cuda", ...; None: the GPU when there is one
    adapt         resample each slice whose wavelength lies outside the band the network
                  reads best to ``wavelength.TARGET_PX`` pixels per wavelength, invert it
                  there and bring the maps back (``dime.wavelength``); False: as it is

    Returns arrays on the spatial grid, zero outside ``valid``: ``modulus`` (G*, Pa, complex),
    ``magnitude`` (|G*|), ``storage`` (G'), ``loss`` (G''), ``log_std`` (σ of ln|G*|),
    ``confidence`` (exp(−σ), 0–1) and ``valid`` (bool).
    """
    if not (frequency_hz > 0 and density_kg_m3 > 0):
        raise ValueError("frequency and density must be positive")
    if not np.all(np.asarray(voxel_size_m, dtype=float) > 0):
        raise ValueError(f"voxel size must be positive, got {voxel_size_m}")
    field, region, spatial = _checked(displacement, mask)
    model = model if isinstance(model, DimeModel) else load_model(model, device)
    stride = stride or max(1, model.patch_size // 2)
    on_gpu = next(model.network.parameters()).device.type != "cpu"
    batch_size = batch_size or (2048 if on_gpu else 256)

    def predict(plane: np.ndarray, plane_mask: np.ndarray) -> dict[str, np.ndarray]:
        return predict_slice(model, plane, plane_mask, stride, batch_size, min_component_weight)

    slices = [
        adaptive_prediction(predict, field[:, z], region[z])
        if adapt
        else predict(field[:, z], region[z])
        for z in range(region.shape[0])
    ]
    stacked = {key: np.stack([s[key] for s in slices]).reshape(spatial) for key in slices[0]}
    scale_pa = physics_scale(frequency_hz, voxel_size_m, density_kg_m3)
    return _maps(stacked, scale_pa, model.log_std_scale)


def _maps(
    prediction: Mapping[str, np.ndarray], scale_pa: float, log_std_scale: float = 1.0
) -> dict[str, np.ndarray]:
    valid = prediction["weight"] > 0
    modulus = np.where(
        valid, modulus_from_log(prediction["log_magnitude"], prediction["phase"], scale_pa), 0
    )
    log_std = np.where(valid, log_std_scale * np.sqrt(prediction["variance"]), 0.0)
    if not (np.isfinite(modulus).all() and np.isfinite(log_std).all()):  # exp overflowed
        raise UserError(
            f"the DIME model's prediction overflows (|G*| or its spread beyond float range at "
            f"{scale_pa:.3g} Pa per unit): the model is unusable for this field"
        )
    return {
        "modulus": modulus,
        "magnitude": np.abs(modulus),
        "storage": modulus.real,
        "loss": modulus.imag,
        "log_std": log_std,
        "confidence": np.where(valid, np.exp(-log_std), 0.0),
        "valid": valid,
    }


def dime_inversion(
    displacement: np.ndarray,
    voxel_size_m: float | Sequence[float],
    frequency_hz: float,
    density_kg_m3: float = 1000.0,
    mask: np.ndarray | None = None,
    *,
    model: DimeModel | str | Path | None = None,
    confidence_threshold: float = 0.8,
    **options: Any,
) -> Any:
    """``invert_dime`` with the argument order and result type (InversionResult) of ``mmdi``.

    ``confidence_mask`` is confidence ≥ ``confidence_threshold``; 0.8 means σ(ln|G*|) ≤ 0.22.
    """
    from dime_pipeline.inversion.result import InversionResult

    maps = invert_dime(
        displacement, mask, frequency_hz, voxel_size_m, density_kg_m3, model=model, **options
    )
    return InversionResult(
        modulus=maps["modulus"],
        confidence=maps["confidence"],
        confidence_mask=maps["valid"] & (maps["confidence"] >= confidence_threshold),
        valid=maps["valid"],
        density_kg_m3=float(density_kg_m3),
    )
