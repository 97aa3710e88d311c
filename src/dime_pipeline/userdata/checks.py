"""Plausibility checks on users' MRE data: refused (UserError) or logged as a warning.

A value that cannot be right (a unit slip, a mixed-up axis) is an error; one that a real dataset
can legitimately have (micro-MRE frequencies, a small field of view) is a logged warning, which
``dime-pipeline invert`` also records in OUT's JSON summary (:func:`collected_warnings`). The
table of which is which is in docs/inversions.md ("Plausibility checks").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dime_pipeline.errors import UserError

log = logging.getLogger("dime_pipeline.userdata")

MIN_IN_PLANE_PX = 8
# (impossible, unusual) bounds: outside the first a value is a unit slip (kHz typed as Hz,
# metres as mm) and refused; outside the second it is logged as a warning (micro-MRE of small
# samples runs at kHz with voxels under 0.1 mm; clinical MRE at 25-100 Hz, 1-4 mm).
FREQUENCY_BOUNDS_HZ = ((1.0, 1e4), (5.0, 1000.0))
VOXEL_BOUNDS_MM = ((0.01, 100.0), (0.1, 20.0))
DENSITY_BOUNDS_KG_M3 = ((100.0, 1e5), (900.0, 1300.0))  # soft tissue ~1000-1100; g/cm³ slips
# Phase offsets in a user's NIfTI. MRE sequences record 3-8 offsets per wave period (rarely 16);
# a last axis longer than 32 is a slice stack or a time series, not offsets of one period. The
# simulator's limit (config.MAX_OFFSETS = 64) is a different thing: how finely a synthetic
# acquisition may sample the period, which users' data never needs.
MAX_USER_OFFSETS = 32
USUAL_MAX_OFFSETS = 8  # a longer offsets axis is legitimate but uncommon (see offsets_axis_doubt)
# Harmonic content along an axis (harmonic_fraction): a true offsets axis of one harmonic wave
# holds nearly all its non-constant energy in DFT bins ±1 (white noise: 2/(N-1) of it).
HARMONIC_LIKELY, HARMONIC_UNLIKELY = 0.8, 0.5
HEURISTIC_MAX_VALUES = 1 << 21  # the axis test looks at a strided subset of this many values
MIN_WAVELENGTHS = 3.0  # fewer across the mask: the fit sees no full wave (a warning)


@contextlib.contextmanager
def collected_warnings() -> Iterator[list[str]]:
    """Collect the messages of every WARNING logged by ``dime_pipeline`` inside the block."""
    messages: list[str] = []

    class _Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = _Collector(level=logging.WARNING)
    logger = logging.getLogger("dime_pipeline")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def check_in_plane_size(path: Path, shape: tuple[int, ...]) -> None:
    if min(shape) < MIN_IN_PLANE_PX:
        raise UserError(
            f"{path}: in-plane size {shape[0]}×{shape[1]} is too small "
            f"(need at least {MIN_IN_PLANE_PX}×{MIN_IN_PLANE_PX} pixels)"
        )


def positive(name: str, value: float) -> float:
    if not (np.isfinite(value) and value > 0):
        raise UserError(f"{name} must be a positive number, got {value}")
    return float(value)


def plausible(name: str, value: float, bounds: tuple[tuple[float, float], ...], unit: str) -> float:
    """``value`` within the impossible bounds (else UserError); a warning outside the usual."""
    (low, high), (usual_low, usual_high) = bounds
    if not low <= value <= high:
        raise UserError(
            f"{name} {value:g} {unit} is outside {low:g}-{high:g} {unit}: a unit slip? "
            f"(MRE uses about {usual_low:g}-{usual_high:g} {unit})"
        )
    if not usual_low <= value <= usual_high:
        log.warning(
            "%s %g %s is unusual for MRE (%g-%g %s)", name, value, unit, usual_low, usual_high, unit
        )
    return value


def resolve_frequency(given: float | None, stored: float | None) -> float:
    if given is None and stored is None:
        raise UserError("--frequency-hz is required (the drive frequency of the acquisition)")
    frequency = positive("--frequency-hz", given if given is not None else stored)
    return plausible("--frequency-hz", frequency, FREQUENCY_BOUNDS_HZ, "Hz")


def resolve_density(given: float | None, stored: float | None, default: float) -> float:
    """--density-kg-m3, else the store's attribute, else ``default``."""
    chosen = next((v for v in (given, stored) if v is not None), default)
    density = positive("--density-kg-m3", chosen)
    return plausible("--density-kg-m3", density, DENSITY_BOUNDS_KG_M3, "kg/m³")


def resolve_spacing(
    path: Path, voxel_size_mm: float | None, found: tuple[float, float] | None
) -> tuple[float, float]:
    if voxel_size_mm is not None:
        size = positive("--voxel-size-mm", voxel_size_mm)
        size = 1e-3 * plausible("--voxel-size-mm", size, VOXEL_BOUNDS_MM, "mm")
        return size, size
    if found is None:
        raise UserError(f"{path}: INPUT has no voxel size, give --voxel-size-mm")
    if not all(np.isfinite(found)) or min(found) <= 0:
        shown = " and ".join(f"{1e3 * size:g} mm" for size in found)
        raise UserError(
            f"{path}: INPUT's in-plane voxel sizes ({shown}) must be positive numbers, give "
            "--voxel-size-mm"
        )
    for size in found:
        plausible(f"{path}: INPUT's voxel size", 1e3 * size, VOXEL_BOUNDS_MM, "mm")
    return found


def check_offsets_count(path: Path, n_offsets: int) -> None:
    if n_offsets > MAX_USER_OFFSETS:
        raise UserError(
            f"{path}: last axis has {n_offsets} phase offsets, more than {MAX_USER_OFFSETS}: "
            "MRE records 3-8 per wave period; is the last NIfTI axis really the offsets "
            "(axes X, Y[, Z][, C], T)?"
        )


def harmonic_fraction(data: np.ndarray, axis: int) -> float:
    """Fraction of the non-constant energy along ``axis`` that lies in DFT bins ±1, summed over
    all other positions (Parseval: Σ_m |X_m|² over m ≠ 0 equals N Σ_k |x_k − x̄|²).

    Phase-offset images of a harmonic wave give about 1 along the offsets axis (less with noise
    or higher harmonics); a spatial axis gives whatever its spatial spectrum puts at one cycle
    per field of view. NaN when the data are constant along ``axis``."""
    data = np.moveaxis(np.asarray(data, dtype=np.float64), axis, -1)
    data = np.where(np.isfinite(data), data, 0.0)  # NaN may lie outside a --mask
    peak = float(np.max(np.abs(data), initial=0.0))
    if not 0 < peak < np.inf:
        return float("nan")
    data = data / peak  # a ratio of energies: scale-free, and 1e200 must not overflow
    n = data.shape[-1]
    kernel = np.exp(-2j * np.pi * np.arange(n) / n)
    first = np.abs(data @ kernel) ** 2
    varying = np.sum((data - data.mean(axis=-1, keepdims=True)) ** 2, axis=-1)
    total = n * float(varying.sum())
    return 2.0 * float(first.sum()) / total if total > 0 else float("nan")


def offsets_axis_doubt(data: np.ndarray) -> str | None:
    """Why the last axis of a ``--layout offsets`` NIfTI ``data`` may not hold the phase offsets
    (another axis looks like them), or None. A heuristic, for a warning:

    - content: another axis of length 3-32 holds ≥ 80 % of its varying energy in DFT bins ±1
      (as offsets of one harmonic do) while the last axis holds < 50 % there;
    - shape: the last axis is longer than the usual 8 offsets while another axis has 3-8
      entries (typical offset counts), unless the last axis itself looks harmonic (≥ 80 %).
    """
    n_last = data.shape[-1]
    step = max(1, int(np.ceil(np.sqrt(data.size / HEURISTIC_MAX_VALUES))))
    sample = data[::step, ::step]  # the in-plane axes are the first two
    last = harmonic_fraction(sample, -1)
    if not np.isfinite(last) or last >= HARMONIC_LIKELY:
        return None
    for axis, length in enumerate(data.shape[:-1]):
        if not 3 <= length <= MAX_USER_OFFSETS:
            continue
        here = harmonic_fraction(sample, axis) if sample.shape[axis] == length else float("nan")
        by_content = here >= HARMONIC_LIKELY and last < HARMONIC_UNLIKELY
        by_shape = n_last > USUAL_MAX_OFFSETS and length <= USUAL_MAX_OFFSETS
        if by_content or by_shape:
            shown = f"{100 * here:.0f} %" if np.isfinite(here) else "not measured"
            return (
                f"the phase offsets may sit on axis {axis} (length {length}), not on the last "
                f"axis (length {n_last}): first-harmonic share of the varying signal {shown} "
                f"along axis {axis}, {100 * last:.0f} % along the last axis (offsets of one "
                "wave give ~100 %); NIfTI axes must be X, Y[, Z][, C], T"
            )
    return None


def check_offsets_axis(path: Path, data: np.ndarray) -> None:
    doubt = offsets_axis_doubt(data)
    if doubt is not None:
        log.warning("%s: %s", path, doubt)


def mask_extent_m(mask: np.ndarray, voxel_size_m: tuple[float, float]) -> float:
    """The longest in-plane side of the mask's bounding box over all slices, in metres."""
    dy, dx = voxel_size_m
    longest = 0.0
    for plane in mask.reshape(-1, *mask.shape[-2:]):
        rows, columns = np.flatnonzero(plane.any(axis=1)), np.flatnonzero(plane.any(axis=0))
        if rows.size:
            height = (rows[-1] - rows[0] + 1) * dy
            width = (columns[-1] - columns[0] + 1) * dx
            longest = max(longest, height, width)
    return longest


def median_wavelength_m(
    magnitude_pa: np.ndarray, valid: np.ndarray, frequency_hz: float, density_kg_m3: float
) -> float | None:
    """λ = √(median |G*|/ρ)/f over the pixels with an estimate; None without any."""
    if not valid.any():
        return None
    wavelength = float(np.sqrt(np.median(magnitude_pa[valid]) / density_kg_m3) / frequency_hz)
    return wavelength if np.isfinite(wavelength) and wavelength > 0 else None


def check_wavelengths(
    mask: np.ndarray,
    magnitude_pa: np.ndarray,
    valid: np.ndarray,
    voxel_size_m: tuple[float, float],
    frequency_hz: float,
    density_kg_m3: float,
) -> float | None:
    """How many wavelengths λ = √(median |G*|/ρ)/f the mask spans (its longest in-plane side;
    None without an estimate), for the summary; a warning when fewer than 3."""
    wavelength = median_wavelength_m(magnitude_pa, valid, frequency_hz, density_kg_m3)
    if wavelength is None:
        return None
    extent = mask_extent_m(mask, voxel_size_m)
    if extent / wavelength < MIN_WAVELENGTHS:
        log.warning(
            "the mask spans %.3g mm, %.2g wavelengths of the median |G*| %.3g kPa "
            "(λ = √(|G*|/ρ)/f = %.3g mm at %g Hz): fewer than %g, so the maps may be biased "
            "(check the voxel size and frequency; a larger field of view or a higher frequency "
            "helps)",
            1e3 * extent,
            extent / wavelength,
            density_kg_m3 * (wavelength * frequency_hz) ** 2 / 1e3,
            1e3 * wavelength,
            frequency_hz,
            MIN_WAVELENGTHS,
        )
    return extent / wavelength
