"""Step 1 of the acquisition model: voxel averaging in plane and over slices (see the package
docstring for the rules: tissue-weighted means, the mask fraction, majority labels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dime_pipeline.errors import UserError
from dime_pipeline.store import Sample

if TYPE_CHECKING:
    from dime_pipeline.acquisition import AcquisitionParams

_TOLERANCE = 1e-9  # relative slack for tissue fractions and slab edges (float round-off)


def stored_names(sample: Sample) -> list[str]:
    """The store's component names (x, y, z by default)."""
    default = ["x", "y", "z"][: len(sample.displacement)]
    return list(sample.attrs.get("components", default))


@dataclass(frozen=True)
class Grid:
    """A sample on the acquired grid (noise-free) plus facts about the resampling."""

    displacement: np.ndarray
    modulus: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    voxel_size_m: tuple[float, ...]
    facts: dict[str, Any]


def resample(sample: Sample, params: AcquisitionParams, names: tuple[str, ...]) -> Grid:
    """Voxel averaging (in plane and over slices) of the sample's selected components."""
    spatial = sample.modulus.shape
    voxel = tuple(float(v) for v in sample.attrs["voxel_size_m"])
    _check_geometry(spatial, voxel, params)
    operators = averaging_operators(spatial, voxel, params)
    tissue = sample.mask.astype(np.float64)
    volume = apply_operators(operators, np.ones(spatial))
    weight = apply_operators(operators, tissue)
    mask = (weight > 0) & (weight >= params.mask_fraction * volume * (1 - _TOLERANCE))
    if not mask.any():
        raise UserError("no acquired voxel lies in the tissue mask (try a smaller --average)")
    safe = np.where(mask, weight, 1.0)
    stored = stored_names(sample)
    field = sample.displacement[[stored.index(name) for name in names]]
    displacement = apply_operators(operators, field * tissue) / safe * mask
    modulus = apply_operators(operators, sample.modulus * tissue) / safe * mask
    labels = _majority_labels(sample.labels, sample.mask, operators) * mask
    return Grid(
        displacement=displacement,
        modulus=modulus,
        mask=mask,
        labels=labels.astype(np.int16),
        voxel_size_m=_acquired_voxel(voxel, params),
        facts=_grid_facts(spatial, voxel, params),
    )


def _check_geometry(
    spatial: tuple[int, ...], voxel: tuple[float, ...], params: AcquisitionParams
) -> None:
    if len(voxel) != len(spatial):
        raise UserError(f"voxel_size_m {list(voxel)} does not match the grid shape {spatial}")
    if params.slices is not None and len(spatial) != 3:
        raise UserError("slices need a 3D store (axes z, y, x); this store is 2D")
    if params.average > min(spatial[-2:]):
        raise UserError(f"average {params.average} exceeds the in-plane grid {spatial[-2:]}")


def averaging_operators(
    spatial: tuple[int, ...], voxel: tuple[float, ...], params: AcquisitionParams
) -> list[np.ndarray | None]:
    """One weight matrix (acquired × simulated) per spatial axis; None where nothing changes."""
    operators: list[np.ndarray | None] = [None] * len(spatial)
    for axis in range(len(spatial) - 2, len(spatial)):
        if params.average > 1:
            operators[axis] = block_operator(spatial[axis], params.average)
    if params.slices is not None:
        operators[0] = slab_operator(spatial[0], voxel[0], params.slices, params.slice_thickness_m)
    return operators


def block_operator(n: int, block: int) -> np.ndarray:
    """Sum over consecutive blocks of ``block`` pixels; the trailing remainder is dropped."""
    rows = np.arange(n // block)
    operator = np.zeros((len(rows), n))
    for offset in range(block):
        operator[rows, rows * block + offset] = 1.0
    return operator


def slab_operator(n: int, spacing: float, slices: int, thickness: float) -> np.ndarray:
    """Box slice profile: overlap (in planes) of each slab with each simulated z plane."""
    planes = thickness / spacing
    start = (n - slices * planes) / 2
    if start < -_TOLERANCE:
        raise UserError(
            f"{slices} slices of {thickness * 1e3:g} mm exceed the volume depth "
            f"{n * spacing * 1e3:g} mm"
        )
    edges = np.array([_snap(start + s * planes) for s in range(slices + 1)])
    lower = np.maximum(edges[:-1, None], np.arange(n)[None, :])
    upper = np.minimum(edges[1:, None], np.arange(1, n + 1)[None, :])
    return np.clip(upper - lower, 0.0, None)


def _snap(value: float) -> float:
    """Round to a plane boundary when round-off is all that separates them."""
    nearest = round(value)
    return float(nearest) if abs(value - nearest) < _TOLERANCE else max(value, 0.0)


def apply_operators(operators: list[np.ndarray | None], array: np.ndarray) -> np.ndarray:
    """Apply the per-axis operators to the trailing spatial axes of ``array``."""
    first = array.ndim - len(operators)
    for index, operator in enumerate(operators):
        if operator is not None:
            axis = first + index
            array = np.moveaxis(np.tensordot(operator, array, axes=(1, axis)), 0, axis)
    return array


def _majority_labels(
    labels: np.ndarray, tissue: np.ndarray, operators: list[np.ndarray | None]
) -> np.ndarray:
    ids = np.unique(labels[tissue])
    if not len(ids):
        return np.zeros(apply_operators(operators, tissue.astype(float)).shape, dtype=np.int16)
    counts = np.stack(
        [apply_operators(operators, ((labels == i) & tissue).astype(float)) for i in ids]
    )
    return ids[np.argmax(counts, axis=0)]  # argmax takes the first (lowest id) on ties


def _acquired_voxel(voxel: tuple[float, ...], params: AcquisitionParams) -> tuple[float, ...]:
    sizes = list(voxel)
    for axis in range(len(sizes) - 2, len(sizes)):
        sizes[axis] = voxel[axis] * params.average
    if params.slices is not None:
        sizes[0] = float(params.slice_thickness_m)
    return tuple(sizes)


def _grid_facts(
    spatial: tuple[int, ...], voxel: tuple[float, ...], params: AcquisitionParams
) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "dropped_pixels": [n % params.average for n in spatial[-2:]],
        "mask_rule": f"tissue fraction of the block >= {params.mask_fraction}",
    }
    if params.slices is not None:
        depth = spatial[0] * voxel[0]
        stack = params.slices * params.slice_thickness_m
        first = (depth - stack) / 2 + params.slice_thickness_m / 2
        facts["slice_centres_m"] = [
            first + s * params.slice_thickness_m for s in range(params.slices)
        ]
    return facts
