"""Estimates stores: modulus maps that an inversion method produced for every row of a packed
dataset, written by every method (MMDI, DI, DIME) and read by the evaluation.

Zarr v3 group, one chunk per sample, metadata consolidated, written atomically. Row i belongs to
row i of the source pack (``seed`` repeats the pack's seeds so readers can check the alignment).

==============  ==========  ========================  =======================================
array           dtype       axes                      meaning
==============  ==========  ========================  =======================================
``modulus``     complex64   (sample, [z,] y, x)       estimated G* = G' + iG'' in Pa; NaN
                                                      wherever there is no estimate (outside
                                                      the mask, and in-mask pixels the method
                                                      could not estimate)
``confidence``  float32     (sample, [z,] y, x)       the method's confidence, 0..1; NaN where
                                                      ``modulus`` is NaN, or everywhere for a
                                                      method without one
``mask``        bool        (sample, [z,] y, x)       the source pack's tissue mask
``seed``        int64       (sample,)                 the source pack's sample seeds
==============  ==========  ========================  =======================================

So ``np.isfinite(modulus)`` is the set of estimated pixels, always inside ``mask``.

Group attributes: ``schema_version``, ``kind`` ("estimates"), ``method``, ``parameters`` (the
method's parameters), ``source`` (the pack's path), ``split``, ``config_hash`` (copied from the
pack), ``seconds`` (wall time per sample), ``units``, ``versions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from dime_pipeline.errors import UserError
from dime_pipeline.store import (
    atomic_directory,
    consolidate,
    jsonable,
    member,
    read_array,
    reading,
)

ESTIMATES_SCHEMA_VERSION = 1
ESTIMATES_KIND = "estimates"
REQUIRED_ATTRS = ("method", "parameters", "source", "config_hash", "seconds")
_DTYPES: dict[str, type] = {
    "modulus": np.complex64,
    "confidence": np.float32,
    "mask": np.bool_,
    "seed": np.int64,
}
UNITS = {"modulus": "Pa", "confidence": "1", "seconds": "s"}


@dataclass
class Estimates:
    """One estimates store in memory (see the module docstring for the arrays)."""

    modulus: np.ndarray
    confidence: np.ndarray
    mask: np.ndarray
    seed: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = self.modulus.shape
        if len(shape) not in (3, 4):
            raise ValueError(f"modulus must have axes (sample, [z,] y, x), got shape {shape}")
        if self.confidence.shape != shape or self.mask.shape != shape:
            raise ValueError("confidence and mask must have the modulus's shape")
        if self.seed.shape != shape[:1]:
            raise ValueError(f"seed must have shape ({shape[0]},), got {self.seed.shape}")

    def __len__(self) -> int:
        return self.modulus.shape[0]

    @property
    def valid(self) -> np.ndarray:
        """Pixels with an estimate (a subset of ``mask``)."""
        return np.isfinite(self.modulus)


def write_estimates(path: str | Path, estimates: Estimates) -> None:
    """Write ``estimates`` atomically; pixels outside the mask are set to NaN on the way."""
    attrs = {
        "schema_version": ESTIMATES_SCHEMA_VERSION,
        "kind": ESTIMATES_KIND,
        "units": UNITS,
        **estimates.attrs,
    }
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise ValueError(f"estimates attributes lack {missing}")
    if len(attrs["seconds"]) != len(estimates):
        raise ValueError(f"need one 'seconds' value per sample ({len(estimates)})")
    mask = np.asarray(estimates.mask, dtype=bool)
    arrays = {
        "modulus": np.where(mask, estimates.modulus, np.nan + 1j * np.nan),
        "confidence": np.where(mask, estimates.confidence, np.nan),
        "mask": mask,
        "seed": estimates.seed,
    }
    axes = ["sample", *["z", "y", "x"][-(mask.ndim - 1) :]]
    with atomic_directory(Path(path)) as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3, attributes=jsonable(attrs))
        for name, dtype in _DTYPES.items():
            data = np.ascontiguousarray(arrays[name], dtype=dtype)
            group.create_array(
                name,
                shape=data.shape,
                dtype=data.dtype,
                chunks=(1, *data.shape[1:]) if data.ndim > 1 else (max(1, len(data)),),
                dimension_names=axes[: data.ndim],
                fill_value=np.nan if name in ("modulus", "confidence") else None,
            )
            if data.size:
                group[name][...] = data
        consolidate(tmp)


def read_estimates(path: str | Path) -> Estimates:
    """Read an estimates store; one clear :class:`UserError` for anything else."""
    path = Path(path)
    with reading(path, "estimates store") as group:
        attrs = dict(group.attrs)
        kind, version = attrs.get("kind"), attrs.get("schema_version")
        if kind != ESTIMATES_KIND or version != ESTIMATES_SCHEMA_VERSION:
            raise UserError(
                f"{path}: not an estimates store this version reads (kind {kind!r}, "
                f"schema_version {version!r}; expected kind {ESTIMATES_KIND!r}, schema_version "
                f"{ESTIMATES_SCHEMA_VERSION})"
            )
        # No chunk check: a row the method could not estimate at all is legitimately absent.
        arrays = {name: read_array(member(group, name)) for name in _DTYPES}
        return Estimates(**arrays, attrs=attrs)  # inside: mismatched shapes are a read error
