"""Users' MRE data for ``dime-pipeline invert``: reading INPUT, writing OUT (docs/inversions.md).

INPUT is one of
- NIfTI, ``--layout offsets``: real wave images with the N ≥ 3 phase offsets on the last axis,
  shape (X, Y, T), (X, Y, Z, T) or (X, Y, Z, C, T) for C encoding components; the first harmonic
  is DFT bin 1 over the offsets (no phase unwrapping is done);
- NIfTI, ``--layout complex``: real and imaginary parts of U on a last axis of length 2,
  (X, Y, 2), (X, Y, Z, 2) or (X, Y, Z, C, 2);
- a complex ``.npy`` in the library's axis order: (y, x), (z, y, x) or (component, z, y, x);
- a sample store folder (``dime_pipeline.store``): its ``measured`` field when it has one (an
  acquired store), else the noise-free ``displacement``.
Inside, fields use the library's axes (component, [z,] y, x): NIfTI axes (i, j, k) are reversed
on reading and restored on writing, so OUT keeps INPUT's array axes and affine, untransposed.
The unit of the field does not matter (G* = -ρω² U/∇²U is scale-free), only its consistency.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dime_pipeline.errors import UserError, one_line
from dime_pipeline.inversion.harmonic import MIN_OFFSETS, first_harmonic
from dime_pipeline.inversion.result import InversionResult
from dime_pipeline.textio import atomic_file

log = logging.getLogger(__name__)

LAYOUTS = ("offsets", "complex")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
MIN_IN_PLANE_PX = 8
OUTPUT_VOLUMES = ("|G*| (kPa)", "G' (kPa)", "G'' (kPa)", "confidence (0-1)")
DEFAULT_DENSITY_KG_M3 = 1000.0
_METRES_PER_UNIT = {"mm": 1e-3, "meter": 1.0, "micron": 1e-6}
# (impossible, unusual) bounds: outside the first a value is a unit slip (kHz typed as Hz,
# metres as mm) and refused; outside the second it is logged as a warning (micro-MRE of small
# samples runs at kHz with voxels under 0.1 mm; clinical MRE at 25-100 Hz, 1-4 mm).
FREQUENCY_BOUNDS_HZ = ((1.0, 1e4), (5.0, 1000.0))
VOXEL_BOUNDS_MM = ((0.01, 100.0), (0.1, 20.0))
DENSITY_BOUNDS_KG_M3 = ((100.0, 1e5), (900.0, 1300.0))  # soft tissue ~1000-1100; g/cm³ slips
# Peak memory of an inversion per byte of the complex field: MMDI's filter bank needs 33.7,
# DIME 4.7, DI 1.6 (`python benchmarks/bench_invert_memory.py`: 256² → 1024² × 3 components);
# 40 leaves room for reading the file.
WORK_PER_FIELD_BYTE = 40


@dataclass
class UserVolume:
    """A field ready to invert, plus what is needed to write results in INPUT's geometry."""

    displacement: np.ndarray  # complex, (component, [z,] y, x), zero outside the mask
    mask: np.ndarray  # bool, ([z,] y, x)
    voxel_size_m: tuple[float, float]  # in-plane (dy, dx)
    frequency_hz: float
    density_kg_m3: float
    affine: np.ndarray  # 4×4, for OUT
    header: object | None  # the INPUT NIfTI header, when there is one
    reversed_axes: bool  # True for NIfTI: library ([z,] y, x) = reversed INPUT (i, j[, k])


@dataclass
class _Raw:
    """What a reader returns: field in library order and the facts that depend on the format."""

    field: np.ndarray  # complex (c, [z,] y, x), may hold non-finite values
    support: np.ndarray  # where any INPUT channel is nonzero, ([z,] y, x)
    voxel_size_m: tuple[float, float] | None
    affine: np.ndarray | None
    header: object | None
    reversed_axes: bool
    frequency_hz: float | None = None
    density_kg_m3: float | None = None
    mask: np.ndarray | None = None
    slice_m: float | None = None


def input_kind(path: Path) -> str:
    """'nifti', 'npy' or 'store', from the path; raise UserError for anything else."""
    if path.is_dir():
        return "store"
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if path.suffix == ".npy":
        return "npy"
    raise UserError(f"{path}: INPUT must be NIfTI (.nii, .nii.gz), .npy or a sample store folder")


def check_output_path(path: str | Path, suffixes: tuple[str, ...]) -> Path:
    """OUT must end with one of ``suffixes`` (the writers pick the format from the name)."""
    path = Path(path)
    if not path.name.endswith(suffixes) or path.name in suffixes:
        raise UserError(f"{path}: output name must end with {' or '.join(suffixes)}")
    return path


def load_user_data(
    path: str | Path,
    *,
    layout: str = "offsets",
    frequency_hz: float | None = None,
    voxel_size_mm: float | None = None,
    mask_path: str | Path | None = None,
    density_kg_m3: float | None = None,
) -> UserVolume:
    """Read INPUT and its mask, check them and remove per-channel offsets; see module docstring."""
    path = Path(path)
    kind = input_kind(path)
    if kind == "nifti":
        raw = _read_nifti(path, layout)
    elif kind == "npy":
        raw = _read_npy(path)
    else:
        raw = _read_store(path)
    _check_in_plane_size(path, raw.field.shape[-2:])
    frequency = _resolve_frequency(frequency_hz, raw.frequency_hz)
    density = _resolve_density(density_kg_m3, raw.density_kg_m3)
    spacing = _resolve_spacing(path, voxel_size_mm, raw.voxel_size_m)
    if not raw.support.any():
        raise UserError(f"{path}: INPUT is all zeros, there is no wave to invert")
    mask = _resolve_mask(path, mask_path, raw)
    field = _finite_inside(path, raw.field, mask, explicit_mask=mask_path is not None)
    field, offsets = remove_channel_offsets(field, mask)
    if not np.any(field[:, mask]):
        raise UserError(f"{path}: INPUT is constant inside the mask, there is no wave to invert")
    # G* = -ρω² U/∇²U does not depend on the field's unit: bring its peak to 1, so that values
    # near the ends of the float range (1e200, 1e-300) neither overflow nor underflow.
    peak = np.abs(field[:, mask]).max()
    field, offsets = field / peak, offsets / peak
    _log_offsets(field, mask, offsets)
    affine = raw.affine
    if affine is None:
        affine = _diagonal_affine(spacing, mask.ndim, raw.slice_m)
    return UserVolume(
        field, mask, spacing, frequency, density, affine, raw.header, raw.reversed_axes
    )


def remove_channel_offsets(field: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Subtract each component's in-mask mean, zero the field outside the mask; return both.

    Scanner exports rescale every channel (offset image, or real/imaginary part) with its own
    intercept. A constant violates the Helmholtz equation (∇²c = 0, ρω²c ≠ 0), and since the first
    harmonic and the real/imaginary split are linear, removing a constant per channel is the same
    as removing a complex constant per component of U, done here.
    """
    offsets = np.array([component[mask].mean() for component in field])
    return (field - offsets.reshape((-1,) + (1,) * mask.ndim)) * mask, offsets


def _log_offsets(field: np.ndarray, mask: np.ndarray, offsets: np.ndarray) -> None:
    rms = np.sqrt(np.mean(np.abs(field[:, mask]) ** 2))
    log.info(
        "removed a constant offset per channel inside the mask (per component |offset|/RMS: %s)",
        ", ".join(f"{value:.3g}" for value in np.abs(offsets) / rms),
    )


def _check_in_plane_size(path: Path, shape: tuple[int, ...]) -> None:
    if min(shape) < MIN_IN_PLANE_PX:
        raise UserError(
            f"{path}: in-plane size {shape[0]}×{shape[1]} is too small "
            f"(need at least {MIN_IN_PLANE_PX}×{MIN_IN_PLANE_PX} pixels)"
        )


def _positive(name: str, value: float) -> float:
    if not (np.isfinite(value) and value > 0):
        raise UserError(f"{name} must be a positive number, got {value}")
    return float(value)


def _plausible(
    name: str, value: float, bounds: tuple[tuple[float, float], ...], unit: str
) -> float:
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


def _resolve_frequency(given: float | None, stored: float | None) -> float:
    if given is None and stored is None:
        raise UserError("--frequency-hz is required (the drive frequency of the acquisition)")
    frequency = _positive("--frequency-hz", given if given is not None else stored)
    return _plausible("--frequency-hz", frequency, FREQUENCY_BOUNDS_HZ, "Hz")


def _resolve_density(given: float | None, stored: float | None) -> float:
    """--density-kg-m3, else the store's attribute, else 1000 kg/m³."""
    chosen = next((v for v in (given, stored) if v is not None), DEFAULT_DENSITY_KG_M3)
    density = _positive("--density-kg-m3", chosen)
    return _plausible("--density-kg-m3", density, DENSITY_BOUNDS_KG_M3, "kg/m³")


def _resolve_spacing(
    path: Path, voxel_size_mm: float | None, found: tuple[float, float] | None
) -> tuple[float, float]:
    if voxel_size_mm is not None:
        size = _positive("--voxel-size-mm", voxel_size_mm)
        size = 1e-3 * _plausible("--voxel-size-mm", size, VOXEL_BOUNDS_MM, "mm")
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
        _plausible(f"{path}: INPUT's voxel size", 1e3 * size, VOXEL_BOUNDS_MM, "mm")
    return found


def _finite_inside(
    path: Path, field: np.ndarray, mask: np.ndarray, explicit_mask: bool
) -> np.ndarray:
    """Non-finite values are allowed only outside an explicit --mask (they are zeroed)."""
    bad = ~np.isfinite(field).all(axis=0)
    if not bad.any():
        return field
    if not explicit_mask or (bad & mask).any():
        where = "inside the mask" if explicit_mask else "(give --mask to exclude them)"
        raise UserError(f"{path}: INPUT has {int(bad.sum())} non-finite (NaN/inf) voxels {where}")
    log.info("zeroed %d non-finite voxels outside the mask", int(bad.sum()))
    return np.where(bad, 0, field)


def _resolve_mask(path: Path, mask_path: str | Path | None, raw: _Raw) -> np.ndarray:
    """--mask, else the store's mask, else where INPUT is nonzero."""
    if mask_path is not None:
        mask = _read_mask(Path(mask_path), raw)
    elif raw.mask is not None:
        mask = raw.mask.astype(bool)
    else:
        mask = raw.support
    if not mask.any():
        raise UserError(f"{mask_path or path}: the mask is empty")
    return mask


def _read_mask(path: Path, raw: _Raw) -> np.ndarray:
    """A NIfTI or .npy mask in INPUT's array order (trailing singleton axes allowed)."""
    if not path.is_file():
        raise UserError(f"{path}: mask file not found")
    if path.name.endswith(NIFTI_SUFFIXES):
        data = _nifti_data(_load_nifti(path), path)
    elif path.suffix == ".npy":
        data = _load_npy(path)
    else:
        raise UserError(f"{path}: --mask must be NIfTI (.nii, .nii.gz) or .npy")
    spatial = raw.support.shape[::-1] if raw.reversed_axes else raw.support.shape
    data = np.asarray(data)
    while data.ndim > len(spatial) and data.shape[-1] == 1:
        data = data[..., 0]
    if raw.reversed_axes and len(spatial) == 3 and spatial[-1] == 1 and data.ndim == 2:
        data = data[..., None]  # a 2D mask for a single-slice volume
    if data.shape != spatial:
        raise UserError(f"{path}: mask shape {data.shape} does not match INPUT's {spatial}")
    if data.dtype.kind not in "biuf":
        raise UserError(f"{path}: a mask holds numbers or booleans, not {data.dtype}")
    mask = np.isfinite(data) & (data != 0)
    return mask.T if raw.reversed_axes else mask


def _load_nifti(path: Path):
    import nibabel as nib

    # nibabel "fixes" a zero pixdim to 1 and a negative one to its magnitude, printing a line on
    # stderr; _nifti_spacing reads the header as written and refuses such voxel sizes instead.
    chatter = nib.imageglobals.logger
    level, chatter.level = chatter.level, logging.ERROR
    try:
        image = nib.load(path)
        stored = _verified_size(path)
    except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError) as error:
        raise UserError(f"{path}: not a readable NIfTI file ({one_line(error)})") from None
    finally:
        chatter.level = level
    header = image.header
    data_bytes = (
        int(np.prod(header.get_data_shape(), dtype=float)) * header.get_data_dtype().itemsize
    )
    if stored < int(header.get_data_offset()) + data_bytes:
        raise UserError(
            f"{path}: not a readable NIfTI file (its header promises {data_bytes:.4g} bytes of "
            f"data, the file holds {stored} in all: cut short?)"
        )
    check_memory(path, data_bytes)
    return image


def _verified_size(path: Path) -> int:
    """The file's size, uncompressed for ``.gz``, after reading it whole: gzip checks its CRC
    and length at the end of the stream, which nibabel never reaches (a flipped byte in a
    ``.nii.gz`` gave an all-zero map)."""
    if not path.name.endswith(".gz"):
        return path.stat().st_size
    import gzip
    import zlib

    size = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 24):
                size += len(chunk)
    except zlib.error as error:  # a damaged deflate stream
        raise ValueError(f"corrupt gzip data: {error}") from None
    return size


def _nifti_data(image, path: Path) -> np.ndarray:
    if image.get_data_dtype().kind == "c":
        raise UserError(
            f"{path}: complex-valued NIfTI is not supported, store real and imaginary parts "
            "on the last axis (--layout complex)"
        )
    try:
        return image.get_fdata(dtype=np.float64)
    except (OSError, ValueError, EOFError) as error:
        raise UserError(f"{path}: cannot read the NIfTI data ({one_line(error)})") from None


def _load_npy(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as stream:
            major, _ = np.lib.format.read_magic(stream)
            read_header = np.lib.format.read_array_header_1_0
            if major > 1:
                read_header = np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(stream)
            header_end = stream.tell()
    except (OSError, ValueError, EOFError) as error:
        raise UserError(f"{path}: not a readable .npy file ({one_line(error)})") from None
    expected = int(np.prod(shape, dtype=float)) * dtype.itemsize
    actual = path.stat().st_size - header_end
    if dtype.hasobject or expected != actual:
        raise UserError(
            f"{path}: not a readable .npy file (its header promises {expected:.4g} bytes of "
            f"{dtype} {shape}, the file holds {actual})"
        )
    check_memory(path, expected)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise UserError(f"{path}: not a readable .npy file ({one_line(error)})") from None


def check_memory(path: Path, data_bytes: float) -> None:
    """Refuse, before reading it, an INPUT whose inversion cannot fit in memory."""
    from dime_pipeline.config import memory_bytes

    field_bytes = data_bytes * 16 / 8  # read as float64, inverted as complex128: at most ×2
    need, have = WORK_PER_FIELD_BYTE * field_bytes, memory_bytes()
    if need > have:
        raise UserError(
            f"{path}: inverting {data_bytes / 1e9:.3g} GB of data needs about {need / 1e9:.3g} GB "
            f"of memory, this machine has {have / 1e9:.3g} GB; invert it in parts"
        )


def _read_nifti(path: Path, layout: str) -> _Raw:
    image = _load_nifti(path)
    data = _nifti_data(image, path)
    channels = _channels_first(path, data, layout)  # (C, X, Y[, Z], channel)
    if layout == "offsets":
        field = first_harmonic(channels, axis=-1, remove_background=True)
    else:
        field = channels[..., 0] + 1j * channels[..., 1]
    order = (0, *range(field.ndim - 1, 0, -1))  # (C, X, Y[, Z]) → (C, [Z,] Y, X)
    support = np.any(channels != 0, axis=(0, -1)).T
    return _Raw(
        field=field.transpose(order),
        support=support,
        voxel_size_m=_nifti_spacing(image, path),
        affine=image.affine,
        header=image.header,
        reversed_axes=True,
    )


def _channels_first(path: Path, data: np.ndarray, layout: str) -> np.ndarray:
    """(X, Y[, Z][, C], channel) → (C, X, Y[, Z], channel), checking the shape for ``layout``."""
    shapes = {
        "offsets": "(X, Y, T), (X, Y, Z, T) or (X, Y, Z, C, T)",
        "complex": "(X, Y, 2), (X, Y, Z, 2) or (X, Y, Z, C, 2)",
    }
    if layout not in LAYOUTS:
        raise UserError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if data.ndim not in (3, 4, 5):
        raise UserError(f"{path}: shape {data.shape} is not {shapes[layout]} for --layout {layout}")
    n_channels = data.shape[-1]
    if layout == "offsets" and n_channels < MIN_OFFSETS:
        raise UserError(
            f"{path}: last axis has {n_channels} phase offsets, --layout offsets needs at least "
            f"{MIN_OFFSETS} (use --layout complex for real/imaginary parts)"
        )
    if layout == "complex" and n_channels != 2:
        raise UserError(
            f"{path}: last axis has length {n_channels}, --layout complex needs 2 (real, "
            "imaginary); use --layout offsets for phase-offset wave images"
        )
    return np.moveaxis(data, 3, 0) if data.ndim == 5 else data[None]


def _nifti_spacing(image, path: Path) -> tuple[float, float]:
    """In-plane (dy, dx) in metres in library order, i.e. (pixdim j, pixdim i), as written in
    the file (``image.header`` holds nibabel's fixed-up copy: 0 → 1 mm, negative → |pixdim|)."""
    from nibabel.openers import ImageOpener

    unit = image.header.get_xyzt_units()[0]
    if unit not in _METRES_PER_UNIT:
        log.info("NIfTI spatial unit is %r, taking voxel sizes as millimetres", unit)
    scale = _METRES_PER_UNIT.get(unit, 1e-3)
    with ImageOpener(path) as stream:
        pixdim = image.header_class.from_fileobj(stream, check=False)["pixdim"]
    return float(pixdim[2]) * scale, float(pixdim[1]) * scale


def _read_npy(path: Path) -> _Raw:
    data = _load_npy(path)
    if not np.iscomplexobj(data):
        raise UserError(f"{path}: .npy INPUT must be complex (first harmonic U), not {data.dtype}")
    if data.ndim not in (2, 3, 4):
        raise UserError(
            f"{path}: shape {data.shape} is not (y, x), (z, y, x) or (component, z, y, x)"
        )
    field = data if data.ndim == 4 else data[None]
    return _Raw(
        field=field.astype(complex),
        support=np.any(field != 0, axis=0),
        voxel_size_m=None,
        affine=None,
        header=None,
        reversed_axes=False,
    )


def _read_store(path: Path) -> _Raw:
    from dime_pipeline.store import read_sample

    sample = read_sample(path)
    attrs = sample.attrs
    sizes = np.atleast_1d(np.asarray(attrs.get("voxel_size_m", np.nan), dtype=float))
    spacing = (float(sizes[0]),) * 2 if sizes.size == 1 else (float(sizes[-2]), float(sizes[-1]))
    slice_m = float(sizes[-3]) if sizes.size >= 3 else None
    if sample.measured is not None:  # acquired store: invert what the scanner measured
        log.info("%s is an acquired store: inverting its measured (acquired) field", path)
        field = np.asarray(sample.measured)
    else:
        log.info("%s has no measured field: inverting its noise-free displacement", path)
        field = np.asarray(sample.displacement)
    return _Raw(
        field=field.astype(complex),
        support=np.any(field != 0, axis=0),
        voxel_size_m=spacing,
        affine=None,
        header=None,
        reversed_axes=False,
        frequency_hz=attrs.get("frequency_hz"),
        density_kg_m3=attrs.get("density_kg_m3"),
        mask=np.asarray(sample.mask, dtype=bool),
        slice_m=slice_m,
    )


def _diagonal_affine(
    spacing_m: tuple[float, float], n_spatial: int, slice_m: float | None
) -> np.ndarray:
    """Voxel-to-mm affine for OUT's axes (y, x, 1) or (z, y, x) when INPUT has no header; an
    unknown slice spacing is taken equal to dy."""
    dy, dx = spacing_m
    dz = slice_m if slice_m and np.isfinite(slice_m) and slice_m > 0 else dy
    sizes = (dy, dx, dz) if n_spatial == 2 else (dz, dy, dx)
    return np.diag([*(1e3 * s for s in sizes), 1.0])


# ---------------------------------------------------------------------------------------------
# Output


def output_maps(volume: UserVolume, result: InversionResult) -> np.ndarray:
    """|G*|, G', G'' (kPa) and confidence, float32, axes (INPUT's spatial axes padded to 3, 4)."""
    maps = np.stack(
        [result.magnitude / 1e3, result.storage / 1e3, result.loss / 1e3, result.confidence],
        axis=-1,
    )
    with np.errstate(over="ignore", invalid="ignore"):
        maps = np.where(result.valid[..., None], maps, 0.0).astype(np.float32)
    bad = ~np.isfinite(maps).all(axis=-1)
    if bad.any():  # the input is finite inside the mask (load_user_data): a map would lie
        raise UserError(
            f"the inversion gave non-finite values at {int(bad.sum())} voxels although INPUT is "
            "finite there; nothing was written (check --frequency-hz and the voxel size)"
        )
    spatial = maps.ndim - 1
    if volume.reversed_axes:
        maps = maps.transpose((*range(spatial - 1, -1, -1), spatial))
    return maps if spatial == 3 else maps[:, :, None]


def write_outputs(
    out: Path, png: Path | None, volume: UserVolume, result: InversionResult, method: str
) -> None:
    """Write OUT (and the preview PNG) atomically: both are written to temporary siblings, and
    renamed only once both are complete."""
    try:
        with contextlib.ExitStack() as stack:
            _write_nifti(stack.enter_context(atomic_file(out)), volume, result, method)
            if png is not None:
                _write_png(stack.enter_context(atomic_file(png)), volume, result, method)
    except OSError as error:
        raise UserError(f"cannot write output ({error})") from None


def _write_nifti(path: Path, volume: UserVolume, result: InversionResult, method: str) -> None:
    import nibabel as nib

    image = nib.Nifti1Image(output_maps(volume, result), volume.affine, header=volume.header)
    image.header.set_data_dtype(np.float32)
    image.header.set_slope_inter(1.0, 0.0)
    if volume.header is None:
        image.header.set_xyzt_units("mm")
    zooms = image.header.get_zooms()
    image.header.set_zooms((*zooms[:3], 1.0))
    image.header["descrip"] = f"dime-pipeline {method}: |G*|,G',G'' kPa; confidence"[:79]
    nib.save(image, path)


def _write_png(path: Path, volume: UserVolume, result: InversionResult, method: str) -> None:
    """|G*| preview in kPa: one panel per slice (at most 12), masked outside valid pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    magnitude = np.ma.masked_where(~result.valid, result.magnitude / 1e3)
    slices = magnitude[None] if magnitude.ndim == 2 else magnitude
    picks = np.unique(np.linspace(0, len(slices) - 1, min(len(slices), 12)).round().astype(int))
    columns = min(len(picks), 4)
    rows = -(-len(picks) // columns)
    figure = Figure(figsize=(3.2 * columns + 1.0, 3.0 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    values = magnitude.compressed()
    vmax = float(np.percentile(values, 99)) if values.size else 1.0
    origin = "lower" if volume.reversed_axes else "upper"
    aspect = volume.voxel_size_m[0] / volume.voxel_size_m[1]  # rows are y: keep true proportions
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for ax, index in zip(axes, picks, strict=False):
        image = ax.imshow(
            slices[index], origin=origin, vmin=0.0, vmax=vmax, cmap="viridis", aspect=aspect
        )
        ax.set_title(f"slice {index}" if len(slices) > 1 else method.upper(), fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    figure.colorbar(image, ax=list(axes), label="|G*| (kPa)", shrink=0.9)
    figure.suptitle(f"dime-pipeline invert --method {method}: |G*| (kPa)", fontsize=10)
    figure.savefig(path, dpi=100)
