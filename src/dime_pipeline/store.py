"""Sample stores: one Zarr v3 group per simulated sample (schema: docs/stores.md, "Sample store").

Arrays
    displacement  complex128, axes (component, [z,] y, x), metres, first harmonic U(x)
    modulus       complex128, axes ([z,] y, x), Pa, ground-truth G* = G' + iG''
    mask          bool, True inside tissue
    labels        int16 region ids (0 outside tissue)
    measured      optional, complex128 like ``displacement``: the acquired (noisy) first harmonic
                  that ``dime-pipeline acquire`` adds (see ``dime_pipeline.acquisition``)
Group attributes: ``schema_version``, ``family``, ``seed``, ``frequency_hz``, ``voxel_size_m``,
``density_kg_m3``, ``config_hash``, ``solver`` (dofs, ranks, seconds, versions) and more.

Writes are atomic: the group is built in a hidden sibling folder and renamed into place, so a
killed job never leaves a store that looks finished.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from dime_pipeline.errors import UserError, one_line

SCHEMA_VERSION = 1
ARRAY_NAMES = ("displacement", "modulus", "mask", "labels")
OPTIONAL_ARRAYS = ("measured",)  # written and read only when present
REQUIRED_ATTRS = (
    "schema_version",
    "family",
    "seed",
    "frequency_hz",
    "voxel_size_m",
    "density_kg_m3",
    "config_hash",
    "solver",
)
_DTYPES = {
    "displacement": np.complex128,
    "modulus": np.complex128,
    "mask": bool,
    "labels": np.int16,
    "measured": np.complex128,
}


@dataclass
class Sample:
    """One sample in memory: the four arrays, the group attributes and, for acquired samples,
    the ``measured`` first harmonic (same shape as ``displacement``)."""

    displacement: np.ndarray
    modulus: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    measured: np.ndarray | None = None

    def __post_init__(self) -> None:
        spatial = self.modulus.shape
        if self.displacement.shape[1:] != spatial:
            raise ValueError(
                f"displacement spatial shape {self.displacement.shape[1:]} != modulus {spatial}"
            )
        if self.mask.shape != spatial or self.labels.shape != spatial:
            raise ValueError("mask and labels must have the modulus's shape")
        if self.measured is not None and self.measured.shape != self.displacement.shape:
            raise ValueError(
                f"measured shape {self.measured.shape} != displacement {self.displacement.shape}"
            )


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; on success it replaces ``target`` by renaming."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_sample(path: str | Path, sample: Sample) -> None:
    """Write ``sample`` as a Zarr v3 group at ``path``, atomically."""
    attrs = {"schema_version": SCHEMA_VERSION, **sample.attrs}
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise ValueError(f"sample attributes lack {missing}")
    with atomic_directory(Path(path)) as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3, attributes=jsonable(attrs))
        spatial_axes = ["z", "y", "x"][-sample.modulus.ndim :]
        axes = {
            "displacement": ["component", *spatial_axes],
            "modulus": spatial_axes,
            "mask": spatial_axes,
            "labels": spatial_axes,
            "measured": ["component", *spatial_axes],
        }
        present = [name for name in OPTIONAL_ARRAYS if getattr(sample, name) is not None]
        for name in (*ARRAY_NAMES, *present):
            data = np.ascontiguousarray(getattr(sample, name), dtype=_DTYPES[name])
            group.create_array(
                name,
                data=data,
                chunks=data.shape,
                dimension_names=axes[name],
                config=EVERY_CHUNK,
            )
        consolidate(tmp)


def consolidate(path: Path) -> None:
    """Consolidate a Zarr group's metadata (a zarr-python extension to v3, hence its warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(path)


# RuntimeError: what numcodecs' Zstd raises for a chunk that is garbage or cut short;
# TypeError: what zarr raises for metadata of the wrong JSON types.
READ_ERRORS = (KeyError, ValueError, OSError, RuntimeError, TypeError, zarr.errors.BaseZarrError)
# Zarr skips chunks that hold only the fill value, so a deleted chunk file would read back as
# zeros; writers that store every chunk let readers tell a truncated store from an empty array.
EVERY_CHUNK = {"write_empty_chunks": True}


@contextmanager
def reading(path: Path, what: str) -> Iterator[zarr.Group]:
    """Open the Zarr v3 group at ``path`` read-only; a missing folder, or any read failure in
    the ``with`` block, becomes one :class:`UserError` naming ``what`` (e.g. "sample store").

    Members come from their own metadata files, not the consolidated copy, which would still
    list a deleted array and let it read as its fill value.
    """
    if not path.is_dir():
        raise UserError(f"{path}: no {what} there")
    if not (path / "zarr.json").is_file():
        raise UserError(f"{path}: not a {what} (no zarr.json: not a Zarr v3 group)")
    with read_errors(path, what):
        yield zarr.open_group(path, mode="r", zarr_format=3, use_consolidated=False)


@contextmanager
def read_errors(path: Path, what: str) -> Iterator[None]:
    """Any Zarr read failure in the block becomes one :class:`UserError` (for lazy reads after
    :func:`reading`)."""
    try:
        yield
    except READ_ERRORS as error:
        raise UserError(f"{path}: not a readable {what} ({one_line(error)})") from None


def member(group: zarr.Group, name: str, complete: bool = False) -> zarr.Array:
    """The array ``name``; a ValueError naming it when it is missing or, with ``complete``, when
    one of its chunk files is."""
    if name not in group:
        raise ValueError(f"array {name!r} is missing")
    array = group[name]
    if not isinstance(array, zarr.Array):
        raise ValueError(f"{name!r} is a group, not an array")
    if complete and array.nchunks_initialized < array.nchunks:
        missing = array.nchunks - array.nchunks_initialized
        raise ValueError(f"array {name!r} lacks {missing} of its {array.nchunks} chunk files")
    return array


def read_array(array: zarr.Array, key: Any = Ellipsis) -> np.ndarray:
    """``array[key]`` as numpy; a chunk that does not decode is a ValueError naming the array."""
    try:
        return np.asarray(array[key])
    except READ_ERRORS as error:
        raise ValueError(f"array {array.basename!r}: {one_line(error)}") from None


def read_sample(path: str | Path) -> Sample:
    """Read a sample store, checking that it is complete and of a schema this version knows."""
    path = Path(path)
    with reading(path, "sample store") as group:
        attrs = dict(group.attrs)
        version = attrs.get("schema_version")
        if version != SCHEMA_VERSION:
            raise UserError(
                f"{path}: schema_version {version!r} is not supported (this version reads "
                f"{SCHEMA_VERSION})"
            )
        missing = [key for key in REQUIRED_ATTRS if key not in attrs]
        if missing:
            raise ValueError(f"attributes {missing} are missing")
        arrays = {name: read_array(member(group, name, complete=True)) for name in ARRAY_NAMES}
        for name in OPTIONAL_ARRAYS:
            if name in group or "acquisition" in attrs:  # an acquired store has them all
                arrays[name] = read_array(member(group, name, complete=True))
        return Sample(**arrays, attrs=attrs)  # inside: mismatched shapes are a read error too


def jsonable(value: Any) -> Any:
    """Convert numpy scalars and arrays, tuples and paths into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
