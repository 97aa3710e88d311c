"""Writing ``dime-pipeline invert``'s outputs: OUT (NIfTI maps), its JSON summary, the optional
confidence-mask NIfTI and the PNG preview, all atomically (docs/inversions.md, "OUT").

Derived maps: the shear-wave speed c = √(2|G*|²/(ρ(G′ + |G*|))), the phase speed of a damped
plane wave in a viscoelastic medium (the standard MRE "shear wave speed"; it equals √(|G*|/ρ)
only without loss), and the wavelength in pixels λ/Δ = c/(f Δ), Δ the coarser in-plane voxel
edge. The clinic's confidence mask is confidence ≥ 95 % among the pixels that got an estimate.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dime_pipeline.errors import UserError
from dime_pipeline.inversion.result import InversionResult
from dime_pipeline.textio import atomic_file
from dime_pipeline.userdata.nifti import NIFTI_SUFFIXES
from dime_pipeline.userdata.readers import UserVolume

OUTPUT_VOLUMES = ("|G*| (kPa)", "G' (kPa)", "G'' (kPa)", "confidence (0-1)")
WAVE_VOLUMES = ("shear-wave speed (m/s)", "wavelength (px)")  # appended with --wave-maps
CONFIDENCE_LEVEL = 0.95
SUMMARY_FORMAT = "dime-pipeline/invert-summary"
SUMMARY_VERSION = 1
SHEAR_WAVE_SPEED = "c = sqrt(2 |G*|^2 / (rho (G' + |G*|)))"
WAVELENGTH = "lambda / delta = c / (f max(dy, dx))"


@dataclass(frozen=True)
class Extras:
    """The optional outputs and what the summary records besides the maps."""

    input_path: str = ""
    confidence_mask: Path | None = None  # --confidence-mask: a uint8 NIfTI
    wave_maps: bool = False  # --wave-maps: append WAVE_VOLUMES to OUT
    vmax_kpa: float | None = None  # --vmax: the PNG's colour scale
    warnings: tuple[str, ...] = ()
    wavelengths_across: float | None = None  # the mask's extent in wavelengths (checks)


def summary_path(out: Path) -> Path:
    """OUT's JSON summary: OUT with ``.json`` for its NIfTI suffix (g.nii.gz → g.json)."""
    name = out.name
    for suffix in NIFTI_SUFFIXES[::-1]:  # .nii.gz before .nii
        if name.endswith(suffix):
            return out.with_name(name.removesuffix(suffix) + ".json")
    return out.with_name(name + ".json")


def shear_wave_speed(result: InversionResult) -> np.ndarray:
    """c in m/s, √(2|G*|²/(ρ(G′ + |G*|))) (``InversionResult.shear_stiffness``/ρ); 0 outside
    ``valid``."""
    return np.sqrt(result.shear_stiffness / result.density_kg_m3)


def wavelength_px(
    result: InversionResult, voxel_size_m: tuple[float, float], frequency_hz: float
) -> np.ndarray:
    """The shear wavelength in pixels, c/(f Δ), Δ the coarser in-plane voxel edge (the one that
    limits the sampling of the wave); 0 outside ``valid``."""
    return shear_wave_speed(result) / (frequency_hz * max(voxel_size_m))


def clinical_confidence_mask(result: InversionResult) -> np.ndarray:
    """Pixels with an estimate (in the mask) whose confidence is ≥ 95 %, for every method (the
    methods' own ``confidence_mask`` thresholds differ: DIME uses 0.8)."""
    return result.valid & (result.confidence >= CONFIDENCE_LEVEL)


def _to_output_axes(volume: UserVolume, maps: np.ndarray) -> np.ndarray:
    """Library ([z,] y, x, volume) → INPUT's spatial axes padded to 3, then volume."""
    spatial = maps.ndim - 1
    if volume.reversed_axes:
        maps = maps.transpose((*range(spatial - 1, -1, -1), spatial))
    return maps if spatial == 3 else maps[:, :, None]


def output_maps(volume: UserVolume, result: InversionResult, wave_maps: bool = False) -> np.ndarray:
    """|G*|, G', G'' (kPa) and confidence, then with ``wave_maps`` the shear-wave speed (m/s)
    and wavelength (px); float32, axes (INPUT's spatial axes padded to 3, volume)."""
    planes = [result.magnitude / 1e3, result.storage / 1e3, result.loss / 1e3, result.confidence]
    with np.errstate(over="ignore", invalid="ignore"):
        if wave_maps:
            planes += [
                shear_wave_speed(result),
                wavelength_px(result, volume.voxel_size_m, volume.frequency_hz),
            ]
        maps = np.stack(planes, axis=-1)
        maps = np.where(result.valid[..., None], maps, 0.0).astype(np.float32)
    bad = ~np.isfinite(maps).all(axis=-1)
    if bad.any():  # the input is finite inside the mask (load_user_data): a map would lie
        raise UserError(
            f"the inversion gave non-finite values at {int(bad.sum())} voxels although INPUT is "
            "finite there; nothing was written (check --frequency-hz and the voxel size)"
        )
    return _to_output_axes(volume, maps)


def _quartiles(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"median": None, "q1": None, "q3": None, "iqr": None}
    q1, median, q3 = (float(v) for v in np.percentile(values, [25, 50, 75]))
    return {"median": median, "q1": q1, "q3": q3, "iqr": q3 - q1}


def region_statistics(
    volume: UserVolume, result: InversionResult, region: np.ndarray
) -> dict[str, object]:
    """Median, quartiles and IQR of each map over ``region`` (bool, library axes)."""
    quantities = {
        "abs_g_kpa": result.magnitude / 1e3,
        "storage_kpa": result.storage / 1e3,
        "loss_kpa": result.loss / 1e3,
        "shear_wave_speed_m_s": shear_wave_speed(result),
        "wavelength_px": wavelength_px(result, volume.voxel_size_m, volume.frequency_hz),
    }
    stats: dict[str, object] = {"pixels": int(region.sum())}
    stats.update({name: _quartiles(values[region]) for name, values in quantities.items()})
    return stats


def summary(
    volume: UserVolume, result: InversionResult, method: str, out: Path, extras: Extras
) -> dict[str, object]:
    """What OUT's JSON summary holds (docs/inversions.md, "JSON summary")."""
    confident = clinical_confidence_mask(result)
    sizes = [1e3 * s for s in volume.voxel_size_m]  # (dy, dx)
    if volume.reversed_axes:
        sizes = sizes[::-1]  # NIfTI (i, j) = library (x, y)
    volumes = list(OUTPUT_VOLUMES) + (list(WAVE_VOLUMES) if extras.wave_maps else [])
    return {
        "format": SUMMARY_FORMAT,
        "format_version": SUMMARY_VERSION,
        "input": extras.input_path,
        "output": str(out),
        "method": method,
        "frequency_hz": volume.frequency_hz,
        "density_kg_m3": volume.density_kg_m3,
        "voxel_size_mm": sizes,
        "voxel_size_axes": "NIfTI i, j" if volume.reversed_axes else "y, x (array rows, columns)",
        "voxel_size_source": volume.spacing_source,
        "volumes": volumes,
        "shear_wave_speed": SHEAR_WAVE_SPEED,
        "wavelength": WAVELENGTH,
        "confidence_level": CONFIDENCE_LEVEL,
        "mask_pixels": int(volume.mask.sum()),
        "wavelengths_across_mask": extras.wavelengths_across,
        "regions": {
            "confidence_mask": region_statistics(volume, result, confident),
            "mask": region_statistics(volume, result, result.valid),
        },
        "warnings": list(extras.warnings),
    }


def _json_text(data: dict[str, object]) -> str:
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [clean(item) for item in value]
        return value

    return json.dumps(clean(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_outputs(
    out: Path,
    png: Path | None,
    volume: UserVolume,
    result: InversionResult,
    method: str,
    extras: Extras | None = None,
) -> None:
    """Write OUT, its JSON summary and the optional confidence mask and PNG atomically: each is
    written to a temporary sibling, and all are renamed only once all are complete."""
    extras = extras or Extras()
    maps = output_maps(volume, result, extras.wave_maps)  # refuses non-finite maps: before files
    text = _json_text(summary(volume, result, method, out, extras))
    try:
        with contextlib.ExitStack() as stack:
            description = "|G*|,G',G'' kPa; confidence" + (
                "; c m/s; wavelength px" * extras.wave_maps
            )
            _write_nifti(stack.enter_context(atomic_file(out)), maps, volume, method, description)
            stack.enter_context(atomic_file(summary_path(out))).write_text(text, encoding="utf-8")
            if extras.confidence_mask is not None:
                mask = clinical_confidence_mask(result).astype(np.uint8)
                mask = _to_output_axes(volume, mask[..., None])[..., 0]
                path = stack.enter_context(atomic_file(extras.confidence_mask))
                _write_nifti(path, mask, volume, method, f"confidence >= {CONFIDENCE_LEVEL:g}")
            if png is not None:
                from dime_pipeline.userdata.preview import write_png

                path = stack.enter_context(atomic_file(png))
                write_png(path, volume, result, method, extras.vmax_kpa)
    except OSError as error:
        raise UserError(f"cannot write output ({error})") from None


def _write_nifti(
    path: Path, data: np.ndarray, volume: UserVolume, method: str, description: str
) -> None:
    """``data`` on OUT's grid with OUT's affine (voxel sizes as used, in mm)."""
    import nibabel as nib

    image = nib.Nifti1Image(data, volume.affine, header=volume.header)
    header = image.header
    header.set_data_dtype(data.dtype)
    header.set_slope_inter(1.0, 0.0)
    time_unit = header.get_xyzt_units()[1] if volume.header is not None else "unknown"
    header.set_xyzt_units("mm", time_unit)  # volume.affine is in mm whatever INPUT's unit
    if data.ndim == 4:
        header.set_zooms((*header.get_zooms()[:3], 1.0))
    header["descrip"] = f"dime-pipeline {method}: {description}"[:79]
    nib.save(image, path)
