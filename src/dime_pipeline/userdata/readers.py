"""Reading INPUT (NIfTI, .npy, MATLAB .mat, sample store) and its mask into a :class:`UserVolume`.

See the package docstring for the formats and axis conventions; the plausibility checks are in
:mod:`dime_pipeline.userdata.checks`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dime_pipeline.errors import UserError, one_line
from dime_pipeline.inversion.harmonic import MIN_OFFSETS, first_harmonic
from dime_pipeline.userdata.checks import (
    check_in_plane_size,
    check_offsets_axis,
    check_offsets_count,
    resolve_density,
    resolve_frequency,
    resolve_spacing,
)
from dime_pipeline.userdata.memory import check_memory

log = logging.getLogger("dime_pipeline.userdata")

LAYOUTS = ("offsets", "complex")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
MAT_SUFFIX = ".mat"
DEFAULT_DENSITY_KG_M3 = 1000.0
_METRES_PER_UNIT = {"mm": 1e-3, "meter": 1.0, "micron": 1e-6}
LIBRARY_SHAPES = "(y, x), (z, y, x) or (component, z, y, x)"


@dataclass
class UserVolume:
    """A field ready to invert, plus what is needed to write results in INPUT's geometry."""

    displacement: np.ndarray  # complex, (component, [z,] y, x), zero outside the mask
    mask: np.ndarray  # bool, ([z,] y, x)
    voxel_size_m: tuple[float, float]  # in-plane (dy, dx), the sizes the inversion used
    frequency_hz: float
    density_kg_m3: float
    affine: np.ndarray  # 4×4 voxel → mm for OUT, its in-plane columns as long as voxel_size_m
    header: object | None  # the INPUT NIfTI header, when there is one
    reversed_axes: bool  # True for NIfTI: library ([z,] y, x) = reversed INPUT (i, j[, k])
    spacing_source: str = "given"  # where voxel_size_m came from, for the JSON summary
    store_grid: bool = False  # a sample store's grid: x towards patient left, y anterior


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
    mm_per_unit: float = 1.0  # the affine's length unit, in mm (NIfTI xyzt_units)
    spacing_source: str = "INPUT"
    pixdim_assumed: bool = False  # a NIfTI pixdim of exactly 1 with no spatial unit
    store_grid: bool = False  # see UserVolume


def input_kind(path: Path) -> str:
    """'nifti', 'npy', 'mat' or 'store', from the path; raise UserError for anything else."""
    if path.is_dir():
        return "store"
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if path.suffix == ".npy":
        return "npy"
    if path.suffix == MAT_SUFFIX:
        return "mat"
    raise UserError(
        f"{path}: INPUT must be NIfTI (.nii, .nii.gz), .npy, MATLAB .mat or a sample store folder"
    )


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
    mat_variable: str | None = None,
) -> UserVolume:
    """Read INPUT and its mask, check them and remove per-channel offsets; see the package
    docstring."""
    path = Path(path)
    kind = input_kind(path)
    if mat_variable is not None and kind != "mat":
        raise UserError("--mat-variable is for a MATLAB .mat INPUT only")
    if kind == "nifti":
        raw = _read_nifti(path, layout)
    elif kind == "npy":
        raw = _read_npy(path)
    elif kind == "mat":
        raw = _read_mat(path, mat_variable)
    else:
        raw = _read_store(path)
    check_in_plane_size(path, raw.field.shape[-2:])
    frequency = resolve_frequency(frequency_hz, raw.frequency_hz)
    density = resolve_density(density_kg_m3, raw.density_kg_m3, DEFAULT_DENSITY_KG_M3)
    spacing = resolve_spacing(path, voxel_size_mm, raw.voxel_size_m)
    source = "--voxel-size-mm" if voxel_size_mm is not None else raw.spacing_source
    if voxel_size_mm is None and raw.pixdim_assumed:
        log.warning(
            "%s: the NIfTI pixdim is exactly 1 with no spatial unit, often a default rather "
            "than a measurement; assuming 1 mm voxels (give --voxel-size-mm to be sure)",
            path,
        )
        source = "assumed 1 mm: NIfTI pixdim 1 with no spatial unit"
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
    if raw.affine is None:
        affine = _diagonal_affine(spacing, mask.ndim, raw.slice_m)
    else:
        affine = affine_with_spacing(raw.affine, raw.mm_per_unit, spacing)
    return UserVolume(
        field,
        mask,
        spacing,
        frequency,
        density,
        affine,
        raw.header,
        raw.reversed_axes,
        spacing_source=source,
        store_grid=raw.store_grid,
    )


def affine_with_spacing(
    affine: np.ndarray, mm_per_unit: float, spacing_m: tuple[float, float]
) -> np.ndarray:
    """INPUT's NIfTI affine in mm, its in-plane columns (i, j) rescaled to the voxel sizes used
    (dx, dy) = (spacing_m[1], spacing_m[0]): OUT then says the size the maps were computed with,
    also when --voxel-size-mm overrode the header. Directions and the origin are kept; a column
    of length 0 becomes the axis it stands for."""
    out = np.array(affine, dtype=float)
    out[:3, :] *= mm_per_unit
    for column, size_m in ((0, spacing_m[1]), (1, spacing_m[0])):
        length = float(np.linalg.norm(out[:3, column]))
        if length > 0 and np.isfinite(length):
            out[:3, column] *= 1e3 * size_m / length
        else:
            out[:3, column] = 0.0
            out[column, column] = 1e3 * size_m
    return out


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


def _read_nifti(path: Path, layout: str) -> _Raw:
    image = _load_nifti(path)
    data = _nifti_data(image, path)
    channels = _channels_first(path, data, layout)  # (C, X, Y[, Z], channel)
    check_in_plane_size(path, (data.shape[1], data.shape[0]))  # library order (y, x)
    if layout == "offsets":
        check_offsets_axis(path, data)
        field = first_harmonic(channels, axis=-1, remove_background=True)
    else:
        field = channels[..., 0] + 1j * channels[..., 1]
    order = (0, *range(field.ndim - 1, 0, -1))  # (C, X, Y[, Z]) → (C, [Z,] Y, X)
    support = np.any(channels != 0, axis=(0, -1)).T
    spacing, mm_per_unit, assumed = _nifti_spacing(image, path)
    return _Raw(
        field=field.transpose(order),
        support=support,
        voxel_size_m=spacing,
        affine=image.affine,
        header=image.header,
        reversed_axes=True,
        mm_per_unit=mm_per_unit,
        spacing_source="NIfTI header (pixdim)",
        pixdim_assumed=assumed,
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
    if layout == "offsets":
        check_offsets_count(path, n_channels)
    if layout == "complex" and n_channels != 2:
        raise UserError(
            f"{path}: last axis has length {n_channels}, --layout complex needs 2 (real, "
            "imaginary); use --layout offsets for phase-offset wave images"
        )
    return np.moveaxis(data, 3, 0) if data.ndim == 5 else data[None]


def _nifti_spacing(image, path: Path) -> tuple[tuple[float, float], float, bool]:
    """In-plane (dy, dx) in metres in library order, i.e. (pixdim j, pixdim i), as written in
    the file (``image.header`` holds nibabel's fixed-up copy: 0 → 1 mm, negative → |pixdim|);
    the header's length unit in mm; and whether the sizes are a bare 1 with no unit (a default
    many tools write, :func:`load_user_data` warns)."""
    from nibabel.openers import ImageOpener

    unit = image.header.get_xyzt_units()[0]
    if unit not in _METRES_PER_UNIT:
        log.info("NIfTI spatial unit is %r, taking voxel sizes as millimetres", unit)
    scale = _METRES_PER_UNIT.get(unit, 1e-3)
    with ImageOpener(path) as stream:
        pixdim = image.header_class.from_fileobj(stream, check=False)["pixdim"]
    assumed = unit == "unknown" and float(pixdim[1]) == 1.0 and float(pixdim[2]) == 1.0
    return (float(pixdim[2]) * scale, float(pixdim[1]) * scale), scale / 1e-3, assumed


def _library_field(path: Path, data: np.ndarray, what: str, shape: str) -> _Raw:
    """A complex array in the library's axis order ((y, x), (z, y, x), (c, z, y, x)) as read from
    a .npy or .mat INPUT (``what`` and ``shape`` name it in messages): no voxel size or affine
    of its own."""
    if not np.iscomplexobj(data):
        raise UserError(f"{path}: {what} must be complex (first harmonic U), not {data.dtype}")
    if data.ndim not in (2, 3, 4):
        raise UserError(f"{path}: {shape} is not {LIBRARY_SHAPES}")
    field = data if data.ndim == 4 else data[None]
    return _Raw(
        field=field.astype(complex),
        support=np.any(field != 0, axis=0),
        voxel_size_m=None,
        affine=None,
        header=None,
        reversed_axes=False,
    )


def _read_npy(path: Path) -> _Raw:
    data = _load_npy(path)
    return _library_field(path, data, ".npy INPUT", f"shape {data.shape}")


def _read_mat(path: Path, variable: str | None) -> _Raw:
    from dime_pipeline.userdata.matlab import read_mat_array

    name, data = read_mat_array(path, variable)
    size = "×".join(map(str, data.shape)) or "1 (a scalar)"
    what = f"MATLAB variable {name!r}"
    return _library_field(path, data, what, f"{what} of size {size} (MATLAB's order)")


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
        store_grid=True,
        frequency_hz=attrs.get("frequency_hz"),
        density_kg_m3=attrs.get("density_kg_m3"),
        mask=np.asarray(sample.mask, dtype=bool),
        slice_m=slice_m,
        spacing_source="sample store (voxel_size_m)",
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
