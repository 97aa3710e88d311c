"""What a format reader returns to :func:`dime_pipeline.userdata.readers.load_user_data`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RawInput:
    """What a reader returns: field in library order and the facts that depend on the format."""

    field: np.ndarray  # complex (c, [z,] y, x), may hold non-finite values
    support: np.ndarray  # where any INPUT channel is nonzero, ([z,] y, x)
    voxel_size_m: tuple[float, float] | None
    # NIfTI facts; plain arrays and stores have none and are in library order already
    affine: np.ndarray | None = None
    header: object | None = None
    reversed_axes: bool = False
    frequency_hz: float | None = None
    density_kg_m3: float | None = None
    mask: np.ndarray | None = None
    slice_m: float | None = None
    mm_per_unit: float = 1.0  # the affine's length unit, in mm (NIfTI xyzt_units)
    spacing_source: str = "INPUT"
    pixdim_assumed: bool = False  # a NIfTI pixdim of exactly 1 with no spatial unit
    store_grid: bool = False  # see readers.UserVolume
