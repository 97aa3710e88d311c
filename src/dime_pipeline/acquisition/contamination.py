"""Step 2 of the acquisition model: compressional waves and rigid bulk motion.

A real MRE first harmonic is not shear waves alone. The driver and the body's own boundaries
also launch compressional waves (wavelengths of metres in soft tissue at MRE frequencies: over
a field of view they are an almost uniform, slowly tilting motion), and the whole body moves
rigidly with the table and breathing. MMDI's high-pass filter exists to remove both; a learned
inversion has to have seen them. Both are drawn from their own stream
(``sample_seed(seed, "contamination", 0)``), so switching them on leaves the noise alone, and
both are scaled so that their RMS over the mask (acquired components pooled) is exactly the
requested fraction of the shear field's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dime_pipeline.acquisition.averaging import Grid
from dime_pipeline.acquisition.snr import rms
from dime_pipeline.seeding import generator, sample_seed

if TYPE_CHECKING:
    from dime_pipeline.acquisition import AcquisitionParams

COMPRESSIONAL_WAVES = 2  # plane waves summed: their interference tilts the field in space
AXES = "xyz"


def contaminate(
    grid: Grid,
    params: AcquisitionParams,
    names: tuple[str, ...],
    seed: int,
    frequency_hz: float,
) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """The compressional + bulk displacement to add to ``grid.displacement`` (same shape, zero
    outside the mask) and facts about it; (None, None) when both amplitudes are 0."""
    if not (params.compressional or params.bulk):
        return None, None
    rng = generator(sample_seed(seed, "contamination", 0))
    shear_rms = rms(grid.displacement[:, grid.mask])
    total = np.zeros_like(grid.displacement, dtype=complex)
    facts: dict[str, Any] = {"compressional": None, "bulk": None}
    # drawn in a fixed order whatever is switched on, so each part depends on its own switch only
    waves = [(_unit_vector(rng), rng.uniform(0, 2 * np.pi)) for _ in range(COMPRESSIONAL_WAVES)]
    bulk_direction, bulk_phase = _unit_vector(rng), rng.uniform(0, 2 * np.pi)
    if params.compressional:
        wavenumber = 2 * np.pi * frequency_hz / params.compressional_speed_m_s
        positions = _positions(grid)
        raw = sum(
            plane_wave(direction, phase, wavenumber, positions, names) for direction, phase in waves
        )
        part = _scaled(raw, grid.mask, params.compressional * shear_rms)
        total += part
        facts["compressional"] = {
            "relative_rms": rms(part[:, grid.mask]) / shear_rms,
            "speed_m_s": params.compressional_speed_m_s,
            "wavelength_m": params.compressional_speed_m_s / frequency_hz,
            "waves": [
                {"direction": [float(v) for v in d], "phase_rad": float(p)} for d, p in waves
            ],
        }
    if params.bulk:
        vector = _components(bulk_direction, names) * np.exp(1j * bulk_phase)
        raw = np.broadcast_to(vector.reshape(-1, *[1] * grid.mask.ndim), total.shape)
        part = _scaled(raw, grid.mask, params.bulk * shear_rms)
        total += part
        facts["bulk"] = {
            "relative_rms": rms(part[:, grid.mask]) / shear_rms,
            "direction": [float(v) for v in bulk_direction],
            "phase_rad": float(bulk_phase),
        }
    return total * grid.mask, facts


def plane_wave(
    direction: np.ndarray,
    phase: float,
    wavenumber: float,
    positions: np.ndarray,
    names: tuple[str, ...],
) -> np.ndarray:
    """A compressional (longitudinal) plane wave d e^{i(φ - k d·x)} of unit amplitude, for the
    components ``names``; ``positions`` (3, *spatial) in metres."""
    travel = np.tensordot(direction, positions, axes=(0, 0))
    wave = np.exp(1j * (phase - wavenumber * travel))
    return _components(direction, names).reshape(-1, *[1] * wave.ndim) * wave


def _positions(grid: Grid) -> np.ndarray:
    """Voxel centres (x, y, z) in metres, shape (3, *spatial); z = 0 on 2D grids."""
    spatial = grid.mask.shape
    sizes = grid.voxel_size_m
    centres = [(np.arange(n) + 0.5) * h for n, h in zip(spatial, sizes, strict=True)]
    mesh = np.meshgrid(*centres, indexing="ij")  # ([z,] y, x)
    x, y = mesh[-1], mesh[-2]
    z = mesh[0] if len(spatial) == 3 else np.zeros(spatial)
    return np.stack([x, y, z])


def _unit_vector(rng: np.random.Generator) -> np.ndarray:
    vector = rng.normal(size=3)
    return vector / np.linalg.norm(vector)


def _components(vector: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    return np.array([vector[AXES.index(name)] for name in names], dtype=complex)


def _scaled(raw: np.ndarray, mask: np.ndarray, target_rms: float) -> np.ndarray:
    """``raw`` scaled to RMS ``target_rms`` over the mask (left at 0 when it has none there, as
    a direction perpendicular to every acquired component)."""
    now = rms(raw[:, mask])
    return raw * (target_rms / now) if now > 0 else np.zeros(raw.shape, dtype=complex)
