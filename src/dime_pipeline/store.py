"""Sample stores: one Zarr v3 group per simulated sample (schema: docs/stores.md, "Sample store").

Arrays
    displacement  complex128, axes (component, [z,] y, x), metres, first harmonic U(x)
    modulus       complex128, axes ([z,] y, x), Pa, ground-truth G* = G' + iG''
    mask          bool, True inside tissue
    labels        int16 region ids (0 outside tissue)
    measured      optional, complex128 like ``displacement``: the acquired (noisy) first harmonic
                  that ``dime-pipeline acquire`` adds (see ``dime_pipeline.acquisition``)
Group attributes: ``schema_version``, ``family``, ``seed``, ``frequency_hz``, ``voxel_size_m``,
``density_kg_m3``, ``config_hash``, ``solver`` (dofs, ranks, seconds, versions) and more, among
them ``wave_pattern`` (read it with :func:`wave_pattern_of`: older stores lack it).

Writes are atomic: the group is built in a hidden sibling folder and renamed into place, so a
killed job never leaves a store that looks finished.
"""

from __future__ import annotations

import math
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

from dime_pipeline.config import FAMILIES, WAVE_PATTERNS
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
# What stores written before ``wave_pattern`` existed were: one driver with an absorbing rest of
# the boundary, except the liver, whose skin was traction-free (reflecting).
LEGACY_WAVE_PATTERN = "absorbing"
LEGACY_WAVE_PATTERNS = {"liver": "reflecting"}
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
    """Yield a temporary sibling of ``target``; on success it replaces ``target`` by renaming.
    Only a folder is replaced: a file or a symbolic link there is the user's, not an earlier
    output (it would be moved aside and left hidden)."""
    target = Path(target)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        kind = "a symbolic link" if target.is_symlink() else "a file"
        raise UserError(f"{target} is {kind}, not an output folder: remove it or choose another")
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


def member(group: zarr.Group | Mapping[str, Any], name: str, complete: bool = False) -> zarr.Array:
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
    """Read a sample store, checking that it is complete, of a schema this version knows and
    valid: every attribute of the schema of the right type and range, every array of the right
    dtype and of shapes that agree (:func:`check_sample_schema`), before any array is read."""
    path = Path(path)
    with reading(path, "sample store") as group:
        attrs, members = _checked_members(path, group)
        arrays = {name: read_array(array) for name, array in members.items()}
        return Sample(**arrays, attrs=attrs)


def read_sample_header(path: str | Path) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """A sample store's attributes and array shapes, with every check of :func:`read_sample`
    that needs no array data (packing checks thousands of stores before copying any)."""
    path = Path(path)
    with reading(path, "sample store") as group:
        attrs, members = _checked_members(path, group)
        return attrs, {name: array.shape for name, array in members.items()}


def _checked_members(path: Path, group: zarr.Group) -> tuple[dict[str, Any], dict[str, zarr.Array]]:
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
    with warnings.catch_warnings():  # Snakemake's .snakemake_timestamp is no Zarr node
        warnings.filterwarnings("ignore", message=".*not recognized as a component")
        present = dict(group.members())  # one listing, not a lookup per name
    members = {name: member(present, name, complete=True) for name in ARRAY_NAMES}
    for name in OPTIONAL_ARRAYS:
        if name in present or "acquisition" in attrs:  # an acquired store has them all
            members[name] = member(present, name, complete=True)
    problem = check_sample_schema(
        attrs, {name: (array.dtype, array.shape) for name, array in members.items()}
    )
    if problem:
        raise UserError(f"{path}: not a valid sample store ({problem})")
    return attrs, members


# What a sample store's arrays hold: numpy dtype kinds (the writer stores complex128, bool and
# int16; a reader takes any complex or integer width, never a real field or a float mask).
ARRAY_KINDS = {
    "displacement": ("c", "complex"),
    "measured": ("c", "complex"),
    "modulus": ("c", "complex"),
    "mask": ("b", "bool"),
    "labels": ("iu", "integer"),
}


def check_sample_schema(
    attrs: Mapping[str, Any], arrays: Mapping[str, tuple[Any, tuple[int, ...]]]
) -> str | None:
    """The first problem of a sample's attributes and arrays (``name -> (dtype, shape)``), or
    None: the checks every reader relies on, like a config's (docs/stores.md)."""
    for name, (dtype, _) in arrays.items():
        kinds, wanted = ARRAY_KINDS[name]
        if np.dtype(dtype).kind not in kinds:
            return f"array '{name}' must be {wanted}, not {np.dtype(dtype)}"
    spatial = arrays["modulus"][1]
    if len(spatial) not in (2, 3):
        return f"array 'modulus' must have 2 or 3 axes ([z,] y, x), not shape {spatial}"
    for name in ("mask", "labels"):
        if arrays[name][1] != spatial:
            return f"array '{name}' has shape {arrays[name][1]}, not the modulus's {spatial}"
    field = arrays["displacement"][1]
    if len(field) != len(spatial) + 1 or field[1:] != spatial or field[0] < 1:
        return f"array 'displacement' has shape {field}, not (component, *{spatial})"
    if "measured" in arrays and arrays["measured"][1] != field:
        return f"array 'measured' has shape {arrays['measured'][1]}, not the displacement's {field}"
    components = field[0]
    return _attribute_problem(attrs, len(spatial), components)


def _attribute_problem(attrs: Mapping[str, Any], ndim: int, components: int) -> str | None:
    voxel = attrs["voxel_size_m"]
    checks = [
        ("family", attrs["family"] in FAMILIES, f"one of {', '.join(FAMILIES)}"),
        ("seed", _integer(attrs["seed"]), "an integer >= 0"),
        ("frequency_hz", _positive(attrs["frequency_hz"]), "a finite number > 0"),
        ("density_kg_m3", _positive(attrs["density_kg_m3"]), "a finite number > 0"),
        (
            "voxel_size_m",
            isinstance(voxel, list) and len(voxel) == ndim and all(map(_positive, voxel)),
            f"a list of {ndim} finite numbers > 0 (one per spatial axis)",
        ),
        ("config_hash", isinstance(attrs["config_hash"], str), "a string"),
        ("solver", isinstance(attrs["solver"], dict), "a mapping"),
    ]
    if "dim" in attrs:
        checks.append(("dim", attrs["dim"] == ndim and _integer(attrs["dim"]), f"{ndim}"))
    if "components" in attrs:
        names = attrs["components"]
        ok = isinstance(names, list) and len(names) == components
        ok = ok and len(set(map(str, names))) == components and set(map(str, names)) <= set("xyz")
        checks.append(("components", ok, f"{components} distinct names of x, y, z"))
    elif components > 3:
        return f"array 'displacement' has {components} components (at most 3: x, y, z)"
    if attrs.get("wave_pattern") is not None:
        pattern = attrs["wave_pattern"]
        ok = isinstance(pattern, str) and pattern in WAVE_PATTERNS
        checks.append(("wave_pattern", ok, f"one of {', '.join(WAVE_PATTERNS)}"))
    if "acquisition" in attrs:
        acquisition = attrs["acquisition"]
        ok = isinstance(acquisition, dict) and _integer(acquisition.get("seed"))
        snr = acquisition.get("snr") if ok else None
        ok = ok and "snr" in acquisition and (snr is None or _positive(snr))
        checks.append(("acquisition", ok, "a mapping with seed (integer >= 0), snr (> 0 or null)"))
    for key, ok, wanted in checks:
        if not ok:
            got = attrs[key]
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            return f"attribute '{key}' must be {wanted}{shown}"
    return None


def wave_pattern_of(attrs: Mapping[str, Any]) -> str:
    """The wave pattern (one of :data:`WAVE_PATTERNS`) of a sample store from its attributes;
    for a store written before the attribute existed, what its ``family`` then was (liver:
    "reflecting", any other: "absorbing")."""
    pattern = attrs.get("wave_pattern")
    if pattern is None:
        return LEGACY_WAVE_PATTERNS.get(str(attrs.get("family")), LEGACY_WAVE_PATTERN)
    if pattern not in WAVE_PATTERNS:
        raise ValueError(f"wave_pattern {pattern!r} is not one of {', '.join(WAVE_PATTERNS)}")
    return str(pattern)


def _integer(value: Any) -> bool:
    """An int >= 0 (not a bool, not 3.0: zarr's JSON keeps integers apart from floats)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _positive(value: Any) -> bool:
    """A finite real number > 0 (not a bool, not a string)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


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
