"""What DIME sees and predicts: per-patch input normalisation and the physics scaling of G*.

**Input.** One displacement component U (complex) on a P×P patch becomes three channels:
Re U and Im U, each with its mean over the tissue pixels removed and divided by its standard
deviation over the tissue pixels, and the mask. Outside the mask the channels are zero. So the
prediction does not depend on the amplitude or unit of U, nor on a constant complex offset, and
hardly on a separate gain per channel (scanner exports). The per-channel scale has a floor,
``channel_floor`` × the mean variance of both channels, so that a channel with almost no signal
(a standing wave whose imaginary part vanishes) is not blown up to unit variance of noise.
A network that sees K components at once (``UNetConfig.components``) gets 2K such channels and
the mask, strongest component first, all scaled by one common factor (``normalize_patches``).

**Output.** For a homogeneous medium G* = -ρω²U/∇²U. Measured in pixels, ∇² = ∇²_px/(ΔyΔx), so

    g = G*/(ρω²ΔyΔx) = -U/∇²_px U

depends only on the field as sampled: the network predicts log g = log|g| + iφ, with
|g| ≈ (λ/2π)² for a wavelength of λ pixels, and one model serves any frequency, voxel size and
density. Multiplying by ρω²ΔyΔx converts back to Pa. (With anisotropic pixels ΔyΔx is the
in-plane area; the network assumes square pixels.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dime_pipeline.dime.settings import DEFAULT_CHANNEL_FLOOR


def physics_scale(
    frequency_hz: float, voxel_size_m: float | Sequence[float], density_kg_m3: float
) -> float:
    """ρω²ΔyΔx in Pa: the modulus of a medium whose shear wavelength is 2π pixels."""
    dy, dx = in_plane_spacing(voxel_size_m)
    omega = 2.0 * np.pi * frequency_hz
    return float(density_kg_m3 * omega**2 * dy * dx)


def in_plane_spacing(voxel_size_m: float | Sequence[float]) -> tuple[float, float]:
    """(Δy, Δx) from one edge length or per-axis sizes ([z,] y, x)."""
    spacing = np.atleast_1d(np.asarray(voxel_size_m, dtype=float))
    if spacing.size == 1:
        return float(spacing[0]), float(spacing[0])
    return float(spacing[-2]), float(spacing[-1])


def dimensionless_log_modulus(
    modulus: np.ndarray, scale_pa: float
) -> tuple[np.ndarray, np.ndarray]:
    """(log|G*/scale|, arg G*) where |G*| > 0, zeros elsewhere: the training target."""
    magnitude = np.abs(modulus)
    positive = magnitude > 0
    log_magnitude = np.zeros(modulus.shape, dtype=np.float64)
    log_magnitude[positive] = np.log(magnitude[positive] / scale_pa)
    phase = np.where(positive, np.angle(modulus), 0.0)
    return log_magnitude, phase


def modulus_from_log(log_magnitude: np.ndarray, phase: np.ndarray, scale_pa: float) -> np.ndarray:
    """G* in Pa from the dimensionless prediction (inverse of ``dimensionless_log_modulus``)."""
    return scale_pa * np.exp(log_magnitude) * np.exp(1j * phase)


def normalize_patches(
    field: torch.Tensor, mask: torch.Tensor, channel_floor: float = DEFAULT_CHANNEL_FLOOR
) -> tuple[torch.Tensor, torch.Tensor]:
    """Network input from raw patches, and each patch's amplitude.

    field (N, 2K, P, P): real and imaginary parts of K components (re₀, im₀, re₁, …), any unit;
    mask  (N, 1, P, P): 1 on tissue, 0 elsewhere (out-of-mask values are ignored).
    Returns inputs (N, 2K + 1, P, P) = (normalised channels, mask) in field's dtype, and
    amplitude (N,): the RMS over the tissue of U minus its mean (all components), which weights
    one-component predictions against each other.

    One component: each channel is divided by its own (floored) standard deviation. Several: the
    components are put in order of decreasing energy (the network's slots mean "strongest,
    next, …", whatever order a file gives them in) and all divided by one scale, the RMS over the
    channels of the components with signal, so the network sees how much weaker, and therefore
    noisier, a component is. A component that is all zero is absent: it stays zero, last.
    """
    count = mask.sum(dim=(-2, -1), keepdim=True).clamp_min(1.0)
    mean = (field * mask).sum(dim=(-2, -1), keepdim=True) / count
    centred = (field - mean) * mask
    variance = centred.square().sum(dim=(-2, -1), keepdim=True) / count
    if field.shape[1] == 2:
        floor = channel_floor * variance.mean(dim=1, keepdim=True)
        scale = torch.sqrt(variance + floor)
    else:
        energy = variance.reshape(len(field), -1, 2).sum(dim=-1)  # (N, K)
        order = energy.argsort(dim=1, descending=True, stable=True)
        channels = (2 * order[..., None] + torch.arange(2, device=field.device)).flatten(1)
        centred = centred.gather(1, channels[..., None, None].expand_as(centred))
        present = 2 * (energy > 0).sum(dim=1).clamp_min(1)
        scale = torch.sqrt(energy.sum(dim=1) / present).reshape(-1, 1, 1, 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an empty patch stays zero
    inputs = torch.cat([centred / scale, mask], dim=1)
    amplitude = torch.sqrt(variance.sum(dim=1)).flatten()
    return inputs, amplitude
