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
``pattern``         int16        (sample,)                              index into attr
==================  ===========  =====================================  =====================

Group attributes: ``schema_version``, ``split``, ``families`` (names for the ``family`` codes),
``config_hash``, ``versions`` (package versions), ``sources`` (the sample store of each row),
``patterns`` (names for the ``pattern`` codes, the wave patterns of ``config.WAVE_PATTERNS``).

``pattern`` and ``patterns`` go together (:data:`OPTIONAL_ARRAYS`): packs written before wave
patterns lack both, and :class:`Pack` reads them with the pattern each row's family then had
(:func:`dime_pipeline.store.wave_pattern_of`); a writer given no ``patterns`` writes neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from dime_pipeline.config import WAVE_PATTERNS
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
    wave_pattern_of,
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
    "pattern": np.int16,
}
PACK_ATTRS = ("split", "families", "config_hash", "versions", "sources")
# Arrays a pack holds only with their names attribute (array -> attribute): older packs lack both.
OPTIONAL_ARRAYS = {"pattern": "patterns"}
# Per-sample arrays that always hold data, so a missing chunk file means a truncated pack (not
# the columns: an all-zero ``family`` chunk is absent from packs written before EVERY_CHUNK).
COMPLETE_ARRAYS = ("measured", "displacement", "modulus", "mask")
IMAGE_ARRAYS = ("measured", "displacement", "modulus", "mask", "labels")  # one chunk per sample
COLUMNS = tuple(name for name in PACK_ARRAYS if name not in IMAGE_ARRAYS)  # one chunk each


def stored_arrays(attrs: Mapping[str, Any]) -> list[str]:
    """The arrays of a pack with attributes ``attrs``: the optional ones only with their names."""
    return [n for n in PACK_ARRAYS if n not in OPTIONAL_ARRAYS or OPTIONAL_ARRAYS[n] in attrs]


def write_pack(
    path: str | Path, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]
) -> None:
    """Write a packed dataset from whole arrays (every array of the schema, same leading length;
    ``pattern`` only, and then necessarily, with the attribute ``patterns``)."""
    names = stored_arrays(attrs)
    missing = sorted(set(names) - set(arrays))
    if missing:
        raise ValueError(f"packed dataset lacks {missing}")
    unnamed = sorted(name for name in OPTIONAL_ARRAYS if name in arrays and name not in names)
    if unnamed:
        raise ValueError(
            f"arrays {unnamed} need the attributes {[OPTIONAL_ARRAYS[n] for n in unnamed]}"
        )
    lengths = {name: len(arrays[name]) for name in names}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"arrays disagree on the number of samples: {lengths}")
    count = lengths["modulus"]
    rows = ({name: arrays[name][i] for name in names} for i in range(count))
    write_pack_rows(path, count, arrays["measured"].shape[1:], rows, attrs)


def write_pack_rows(
    path: str | Path,
    count: int,
    field_shape: tuple[int, ...],
    rows: Iterable[Mapping[str, Any]],
    attrs: Mapping[str, Any],
) -> None:
    """Write a packed dataset of ``count`` samples atomically, one row at a time.

    ``rows`` yields every array of the schema for one sample (``pattern`` only when ``attrs``
    has ``patterns``: :func:`stored_arrays`); ``field_shape`` is the shape of its ``measured``
    field, (component, [z,] y, x). Only one sample's images are held in memory, so packs of any
    size fit (the per-sample columns, a few numbers each, are written at the end).
    """
    missing = sorted(set(PACK_ATTRS) - set(attrs))
    if missing:
        raise ValueError(f"packed dataset lacks {missing}")
    names = stored_arrays(attrs)
    shapes = _row_shapes(tuple(field_shape))
    axes = ["z", "y", "x"][-len(shapes["modulus"]) :]
    with atomic_directory(Path(path)) as tmp:
        group = zarr.open_group(
            tmp,
            mode="w",
            zarr_format=3,
            attributes=jsonable({"schema_version": PACK_SCHEMA_VERSION, **attrs}),
        )
        arrays = {name: _create(group, name, count, shapes[name], axes) for name in names}
        columns = {
            name: np.zeros((count, *shapes[name]), PACK_ARRAYS[name])
            for name in COLUMNS
            if name in names
        }
        written = 0
        for index, row in enumerate(rows):
            if index >= count:
                raise ValueError(f"more than the {count} rows announced")
            for name in IMAGE_ARRAYS:
                arrays[name][index] = _checked(row, name, shapes[name])
            for name, column in columns.items():
                column[index] = _checked(row, name, shapes[name])
            written = index + 1
        if written != count:
            raise ValueError(f"{written} rows written, {count} announced")
        for name, column in columns.items():
            if column.size:
                arrays[name][...] = column
        consolidate(tmp)


def _row_shapes(field_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The shape of one sample's entry in every array of the schema."""
    spatial = field_shape[1:]
    images = {"measured": field_shape, "displacement": field_shape}
    images |= {name: spatial for name in ("modulus", "mask", "labels")}
    return images | {name: () for name in COLUMNS} | {"voxel_size_m": (len(spatial),)}


def _create(
    group: zarr.Group, name: str, count: int, row_shape: tuple[int, ...], axes: list[str]
) -> zarr.Array:
    """An array of the schema: one chunk per sample, or one chunk in all for a scalar column."""
    names = {
        "measured": ["sample", "component", *axes],
        "displacement": ["sample", "component", *axes],
        "voxel_size_m": ["sample", "axis"],
    }
    return group.create_array(
        name,
        shape=(count, *row_shape),
        dtype=PACK_ARRAYS[name],
        chunks=(1, *row_shape) if row_shape else (max(1, count),),
        dimension_names=names.get(name, ["sample", *axes][: 1 + len(row_shape)]),
        config=EVERY_CHUNK,  # kept by this handle only, not by group[name]
    )


def _checked(row: Mapping[str, Any], name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in row:
        raise ValueError(f"a row of the packed dataset lacks {name!r}")
    value = np.asarray(row[name], dtype=PACK_ARRAYS[name])
    if value.shape != shape:
        raise ValueError(f"{name} of a row has shape {value.shape}, expected {shape}")
    return value


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
            for name, names in OPTIONAL_ARRAYS.items():
                if names not in self.attrs and name in group:
                    raise UserError(
                        f"{self.path}: not a valid packed dataset (array '{name}' without the "
                        f"attribute '{names}' naming its codes)"
                    )
            self.arrays = {
                name: member(group, name, complete=name in COMPLETE_ARRAYS)
                for name in stored_arrays(self.attrs)
            }
            problem = _schema_problem(self.arrays, self.attrs) or _column_problem(
                {name: read_array(self.arrays[name]) for name in COLUMNS if name in self.arrays},
                self.attrs,
            )
            if problem:
                raise UserError(f"{self.path}: not a valid packed dataset ({problem})")

    def __len__(self) -> int:
        return self.arrays["modulus"].shape[0]

    @property
    def families(self) -> list[str]:
        return list(self.attrs["families"])

    @property
    def patterns(self) -> list[str]:
        """Names for the ``pattern`` codes; for a pack written before wave patterns, the
        patterns its families then had (:func:`~dime_pipeline.store.wave_pattern_of`), sorted."""
        if "patterns" in self.attrs:
            return list(self.attrs["patterns"])
        return sorted({wave_pattern_of({"family": family}) for family in self.families})

    def wave_patterns(self) -> list[str]:
        """The wave pattern of every row, by name."""
        patterns = self.patterns
        return [patterns[int(code)] for code in self.column("pattern")]

    def sample(self, index: int) -> dict[str, np.ndarray]:
        """Every array the pack holds of one sample (row ``index``)."""
        return {name: self.row(name, index) for name in self.arrays}

    def row(self, name: str, index: int) -> np.ndarray:
        """Row ``index`` of one array; a chunk that does not decode is a UserError."""
        return self._read(name, index)

    def column(self, name: str) -> np.ndarray:
        """A whole array, e.g. ``frequency_hz`` for all samples. ``pattern`` of a pack written
        before wave patterns: the codes (into :attr:`patterns`) of its rows' families then."""
        return self._read(name, ...)

    def _read(self, name: str, key: Any) -> np.ndarray:
        if name == "pattern" and name not in self.arrays:
            return self._legacy_patterns()[key]
        with read_errors(self.path, "packed dataset"):  # lazily, after __init__'s checks
            return read_array(self.arrays[name], key)

    def _legacy_patterns(self) -> np.ndarray:
        """The ``pattern`` codes of a pack without them: each row's family's old pattern."""
        families, patterns = self.families, self.patterns
        by_family = [patterns.index(wave_pattern_of({"family": family})) for family in families]
        codes = np.asarray(by_family, PACK_ARRAYS["pattern"])
        return codes[self._read("family", ...).astype(np.intp)]


def _schema_problem(arrays: Mapping[str, zarr.Array], attrs: Mapping[str, Any]) -> str | None:
    """The first dtype, shape or ``families`` problem of a pack, from its metadata alone."""
    for name, array in arrays.items():
        wanted = np.dtype(PACK_ARRAYS[name])
        if array.dtype.kind != wanted.kind:
            return f"array '{name}' must be {wanted.name}, not {array.dtype}"
    count, *spatial = arrays["modulus"].shape
    field = arrays["measured"].shape
    if len(spatial) not in (2, 3) or len(field) != len(spatial) + 2 or field[2:] != tuple(spatial):
        return f"arrays 'measured' {field} and 'modulus' {arrays['modulus'].shape} disagree"
    expected = {
        name: (count, *shape) for name, shape in _row_shapes((field[1], *spatial)).items()
    } | {"measured": field}
    for name, array in arrays.items():
        if array.shape != expected[name]:
            return f"array '{name}' has shape {array.shape}, not {expected[name]}"
    families = attrs.get("families")
    if not (isinstance(families, list) and all(isinstance(f, str) for f in families)):
        return f"attribute 'families' must be a list of names (got {families!r})"
    patterns = attrs.get("patterns", [])
    if not (isinstance(patterns, list) and all(p in WAVE_PATTERNS for p in patterns)):
        return (
            f"attribute 'patterns' must be a list of {', '.join(WAVE_PATTERNS)} (got {patterns!r})"
        )
    return None


def _column_problem(columns: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> str | None:
    """The first per-sample value out of range: physical quantities finite and > 0, ``snr`` > 0
    (inf: noise-free), ``family`` an index into the ``families`` attribute, ``seed`` >= 0,
    ``pattern`` (when there) an index into the ``patterns`` attribute."""
    checks = {
        "frequency_hz": (np.isfinite, "a finite number > 0"),
        "voxel_size_m": (np.isfinite, "a finite number > 0"),
        "density_kg_m3": (np.isfinite, "a finite number > 0"),
        "snr": (lambda v: ~np.isnan(v), "a number > 0 (inf: noise-free)"),
    }
    bad: dict[str, tuple[np.ndarray, str]] = {
        name: (~(finite(columns[name]) & (columns[name] > 0)), wanted)
        for name, (finite, wanted) in checks.items()
    }
    families = len(attrs["families"])
    bad["family"] = (
        (columns["family"] < 0) | (columns["family"] >= families),
        f"an index into the {families} families",
    )
    bad["seed"] = (columns["seed"] < 0, "an integer >= 0")
    if "pattern" in columns:
        patterns = len(attrs["patterns"])
        bad["pattern"] = (
            (columns["pattern"] < 0) | (columns["pattern"] >= patterns),
            f"an index into the {patterns} patterns",
        )
    for name, (flags, wanted) in bad.items():
        rows = np.flatnonzero(flags.any(axis=tuple(range(1, flags.ndim))))
        if len(rows):
            value = columns[name][rows[0]]
            return (
                f"column '{name}' must be {wanted}: {len(rows)} row(s) are not, row {rows[0]} "
                f"holds {value.tolist()}"
            )
    return None
