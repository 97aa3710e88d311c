"""Library-order INPUT: a complex ``.npy``, a MATLAB ``.mat`` array, a sample store folder.

None carries an affine; a store carries its voxel sizes, frequency, density and mask.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dime_pipeline.errors import UserError, one_line
from dime_pipeline.userdata.memory import check_memory
from dime_pipeline.userdata.raw import RawInput

log = logging.getLogger("dime_pipeline.userdata")

LIBRARY_SHAPES = "(y, x), (z, y, x) or (component, z, y, x)"


def read_npy(path: Path) -> RawInput:
    data = load_npy(path)
    return _library_field(path, data, ".npy INPUT", f"shape {data.shape}")


def read_mat(path: Path, variable: str | None) -> RawInput:
    from dime_pipeline.userdata.matlab import read_mat_array

    name, data = read_mat_array(path, variable)
    size = "×".join(map(str, data.shape)) or "1 (a scalar)"
    what = f"MATLAB variable {name!r}"
    return _library_field(path, data, what, f"{what} of size {size} (MATLAB's order)")


def read_store(path: Path) -> RawInput:
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
    return RawInput(
        field=field.astype(complex),
        support=np.any(field != 0, axis=0),
        voxel_size_m=spacing,
        store_grid=True,
        frequency_hz=attrs.get("frequency_hz"),
        density_kg_m3=attrs.get("density_kg_m3"),
        mask=np.asarray(sample.mask, dtype=bool),
        slice_m=slice_m,
        spacing_source="sample store (voxel_size_m)",
    )


def _library_field(path: Path, data: np.ndarray, what: str, shape: str) -> RawInput:
    """A complex array in the library's axis order ((y, x), (z, y, x), (c, z, y, x)) as read from
    a .npy or .mat INPUT (``what`` and ``shape`` name it in messages): no voxel size or affine
    of its own."""
    if not np.iscomplexobj(data):
        raise UserError(f"{path}: {what} must be complex (first harmonic U), not {data.dtype}")
    if data.ndim not in (2, 3, 4):
        raise UserError(f"{path}: {shape} is not {LIBRARY_SHAPES}")
    field = data if data.ndim == 4 else data[None]
    return RawInput(
        field=field.astype(complex),
        support=np.any(field != 0, axis=0),
        voxel_size_m=None,
    )


def load_npy(path: Path) -> np.ndarray:
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
