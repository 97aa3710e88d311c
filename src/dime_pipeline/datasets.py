"""Packed datasets: train / val / test Zarr v3 stores with a leading ``sample`` axis.

Schema (``PACK_SCHEMA_VERSION``), one chunk per sample, metadata consolidated:

==================  ===========  =====================================  =====================
array               dtype        axes                                   units
==================  ===========  =====================================  =====================
``measured``        complex64    (sample, component, [z,] y, x)         m, acquired 1st harm.
``displacement``    complex64    (sample, component, [z,] y, x)         m, noise-free field
``modulus``         complex64    (sample, [z,] y, x)                    Pa, ground-truth G*
``mask``            bool         (sample, [z,] y, x)
``labels``          int16        (sample, [z,] y, x)                    region ids
``frequency_hz``    float64      (sample,)                              Hz
``voxel_size_m``    float64      (sample, spatial axes)                 m, per axis [z,] y, x
``density_kg_m3``   float64      (sample,)                              kg/m³
``snr``             float64      (sample,)                              inf when noise-free
``family``          int16        (sample,)                              index into attr
``seed``            int64        (sample,)                              the sample's seed
==================  ===========  =====================================  =====================

Group attributes: ``schema_version``, ``split``, ``families`` (names for the ``family`` codes),
``config_hash``, ``versions`` (package versions), ``sources`` (the sample store of each row).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from dime_pipeline.errors import UserError
from dime_pipeline.store import (
    EVERY_CHUNK,
    atomic_directory,
    consolidate,
    jsonable,
    member,
    read_array,
    read_errors,
    reading,
)

PACK_SCHEMA_VERSION = 1
PACK_ARRAYS: dict[str, type] = {
    "measured": np.complex64,
    "displacement": np.complex64,
    "modulus": np.complex64,
    "mask": np.bool_,
    "labels": np.int16,
    "frequency_hz": np.float64,
    "voxel_size_m": np.float64,
    "density_kg_m3": np.float64,
    "snr": np.float64,
    "family": np.int16,
    "seed": np.int64,
}
PACK_ATTRS = ("split", "families", "config_hash", "versions", "sources")
# Per-sample arrays that always hold data, so a missing chunk file means a truncated pack (not
# the columns: an all-zero ``family`` chunk is absent from packs written before EVERY_CHUNK).
COMPLETE_ARRAYS = ("measured", "displacement", "modulus", "mask")


def write_pack(
    path: str | Path, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]
) -> None:
    """Write a packed dataset atomically; every array of the schema, same leading length."""
    missing = sorted(set(PACK_ARRAYS) - set(arrays)) + sorted(set(PACK_ATTRS) - set(attrs))
    if missing:
        raise ValueError(f"packed dataset lacks {missing}")
    lengths = {name: len(arrays[name]) for name in PACK_ARRAYS}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"arrays disagree on the number of samples: {lengths}")
    spatial = arrays["modulus"].shape[1:]
    axes = ["z", "y", "x"][-len(spatial) :]
    names = {
        "measured": ["sample", "component", *axes],
        "displacement": ["sample", "component", *axes],
        "voxel_size_m": ["sample", "axis"],
    }
    with atomic_directory(Path(path)) as tmp:
        group = zarr.open_group(
            tmp,
            mode="w",
            zarr_format=3,
            attributes=jsonable({"schema_version": PACK_SCHEMA_VERSION, **attrs}),
        )
        for name, dtype in PACK_ARRAYS.items():
            data = np.ascontiguousarray(arrays[name], dtype=dtype)
            chunks = (1, *data.shape[1:]) if data.ndim > 1 else (max(1, len(data)),)
            array = group.create_array(
                name,
                shape=data.shape,
                dtype=data.dtype,
                chunks=chunks,
                dimension_names=names.get(name, ["sample", *axes][: data.ndim]),
                config=EVERY_CHUNK,  # kept by this handle only, not by group[name]
            )
            if data.size:
                array[...] = data
        consolidate(tmp)


class Pack:
    """Read access to a packed dataset; arrays are read lazily, one sample at a time if wanted."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with reading(self.path, "packed dataset") as group:
            self.group = group
            self.attrs = dict(group.attrs)
            version = self.attrs.get("schema_version")
            if version != PACK_SCHEMA_VERSION:
                raise UserError(
                    f"{self.path}: schema_version {version!r} is not supported "
                    f"(this version reads {PACK_SCHEMA_VERSION})"
                )
            self.arrays = {
                name: member(group, name, complete=name in COMPLETE_ARRAYS) for name in PACK_ARRAYS
            }

    def __len__(self) -> int:
        return self.arrays["modulus"].shape[0]

    @property
    def families(self) -> list[str]:
        return list(self.attrs["families"])

    def sample(self, index: int) -> dict[str, np.ndarray]:
        """Every array of one sample (row ``index``)."""
        return {name: self.row(name, index) for name in self.arrays}

    def row(self, name: str, index: int) -> np.ndarray:
        """Row ``index`` of one array; a chunk that does not decode is a UserError."""
        return self._read(name, index)

    def column(self, name: str) -> np.ndarray:
        """A whole array, e.g. ``frequency_hz`` for all samples."""
        return self._read(name, ...)

    def _read(self, name: str, key: Any) -> np.ndarray:
        with read_errors(self.path, "packed dataset"):  # lazily, after __init__'s checks
            return read_array(self.arrays[name], key)
