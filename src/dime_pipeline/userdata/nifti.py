"""NIfTI INPUT and masks: the data, the layouts, the voxel sizes as written, the affine.

nibabel is imported on first use (the other formats do not need it).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dime_pipeline.errors import UserError, one_line
from dime_pipeline.inversion.harmonic import MIN_OFFSETS, first_harmonic
from dime_pipeline.userdata.checks import (
    check_in_plane_size,
    check_offsets_axis,
    check_offsets_count,
)
from dime_pipeline.userdata.memory import check_memory
from dime_pipeline.userdata.raw import RawInput

log = logging.getLogger("dime_pipeline.userdata")

LAYOUTS = ("offsets", "complex")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
_METRES_PER_UNIT = {"mm": 1e-3, "meter": 1.0, "micron": 1e-6}


def read_nifti(path: Path, layout: str) -> RawInput:
    image = load_nifti(path)
    data = nifti_data(image, path)
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
    return RawInput(
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


def load_nifti(path: Path):
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


def nifti_data(image, path: Path) -> np.ndarray:
    if image.get_data_dtype().kind == "c":
        raise UserError(
            f"{path}: complex-valued NIfTI is not supported, store real and imaginary parts "
            "on the last axis (--layout complex)"
        )
    try:
        return image.get_fdata(dtype=np.float64)
    except (OSError, ValueError, EOFError) as error:
        raise UserError(f"{path}: cannot read the NIfTI data ({one_line(error)})") from None
