"""``--png``: the |G*| preview in radiological orientation, low-confidence pixels hatched.

A NIfTI INPUT's affine says where the patient is: each slice is turned so that the image's left
is the patient's right (R on the left, L on the right; A at the top for axial and sagittal
slices, S at the top for coronal and sagittal ones; a sagittal slice has A on the left), and the
sides are labelled. Other INPUTs (.npy, .mat, sample stores) carry no patient orientation: their
slices are drawn as arrays (row 0 at the top) without side labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dime_pipeline.inversion.result import InversionResult
from dime_pipeline.userdata.readers import UserVolume
from dime_pipeline.userdata.writers import CONFIDENCE_LEVEL

MAX_PANELS = 12
# The ends of each RAS world axis (x, y, z), the larger coordinate first: R, A, S.
_ENDS = {0: ("R", "L"), 1: ("A", "P"), 2: ("S", "I")}


@dataclass(frozen=True)
class Orientation:
    """How to draw an (i, j) slice: transpose it (columns along i), then flip rows/columns."""

    transpose: bool
    flip_rows: bool
    flip_columns: bool
    labels: dict[str, str]  # side ("left", "right", "top", "bottom") → patient direction

    def apply(self, plane_ij: np.ndarray) -> np.ndarray:
        shown = plane_ij.T if self.transpose else plane_ij
        if self.flip_rows:
            shown = shown[::-1]
        if self.flip_columns:
            shown = shown[:, ::-1]
        return shown


# A sample store's (y, x) grid: x towards the patient's left, y anterior (docs/stores.md), so
# radiological is rows flipped (anterior at the top), columns as they are (patient right left).
STORE_ORIENTATION = Orientation(
    transpose=False,
    flip_rows=True,
    flip_columns=False,
    labels={"left": "R", "right": "L", "top": "A", "bottom": "P"},
)


def radiological(affine: np.ndarray) -> Orientation | None:
    """The radiological way to draw slices of the voxel axes (i, j) of a NIfTI ``affine``: the
    world axis nearest to each voxel axis (``nibabel.orientations.io_orientation``, RAS+) decides
    which runs across the screen (x if the slice has it, else y) and which way: the larger world
    coordinate (R, A, S) on the left and at the top. None when the affine does not tell."""
    from nibabel.orientations import io_orientation

    try:
        ornt = io_orientation(affine)[:2]
    except (ValueError, np.linalg.LinAlgError):
        return None
    if not np.isfinite(ornt).all():
        return None
    (world_i, sign_i), (world_j, sign_j) = ornt.astype(int)
    horizontal = 0 if 0 in (world_i, world_j) else 1
    columns_on_i = world_i == horizontal  # the axes are distinct: exactly one is `horizontal`
    world_rows = world_j if columns_on_i else world_i
    sign_columns, sign_rows = (sign_i, sign_j) if columns_on_i else (sign_j, sign_i)
    return Orientation(
        transpose=bool(columns_on_i),  # (i, j) planes have rows along i
        flip_rows=bool(sign_rows > 0),  # index up = toward A/S: reverse, A/S at the top
        flip_columns=bool(sign_columns > 0),  # index up = toward R/A: reverse, R/A on the left
        labels={
            "left": _ENDS[horizontal][0],
            "right": _ENDS[horizontal][1],
            "top": _ENDS[world_rows][0],
            "bottom": _ENDS[world_rows][1],
        },
    )


def write_png(
    path,
    volume: UserVolume,
    result: InversionResult,
    method: str,
    vmax_kpa: float | None = None,
) -> None:
    """Save :func:`preview_figure` as a PNG whose metadata holds the colour scale (vmax_kpa)."""
    figure, vmax_kpa = preview_figure(volume, result, method, vmax_kpa)
    metadata = {
        "Software": "dime-pipeline invert",
        "Description": f"|G*| (kPa) by {method}, colour scale 0-{vmax_kpa:.6g} kPa",
        "vmax_kpa": f"{vmax_kpa:.6g}",
    }
    figure.savefig(path, dpi=100, metadata=metadata)


def preview_figure(
    volume: UserVolume, result: InversionResult, method: str, vmax_kpa: float | None = None
):
    """(figure, vmax): |G*| in kPa, one panel per slice (at most 12), masked outside valid pixels,
    pixels below 95 % confidence hatched; colour scale 0 to ``vmax_kpa`` (default: the 99th
    percentile of |G*|)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    magnitude = np.where(result.valid, result.magnitude / 1e3, np.nan)
    doubtful = result.valid & (result.confidence < CONFIDENCE_LEVEL)
    values = magnitude[result.valid]
    if vmax_kpa is None:
        vmax_kpa = float(np.percentile(values, 99)) if values.size else 1.0
        vmax_kpa = vmax_kpa if vmax_kpa > 0 else 1.0
    planes = list(magnitude[None] if magnitude.ndim == 2 else magnitude)  # library (y, x)
    hatched = list(doubtful[None] if doubtful.ndim == 2 else doubtful)
    dy, dx = volume.voxel_size_m
    store = volume.store_grid
    orientation = radiological(volume.affine) if volume.reversed_axes else None
    if store:
        orientation = STORE_ORIENTATION
    if orientation is None or store:
        rows_spacing, columns_spacing = dy, dx
    else:
        spacing = (dx, dy)  # along (i, j)
        rows_spacing, columns_spacing = spacing[::-1] if orientation.transpose else spacing
    picks = np.unique(np.linspace(0, len(planes) - 1, min(len(planes), MAX_PANELS)).round())
    picks = picks.astype(int)
    columns = min(len(picks), 4)
    rows = -(-len(picks) // columns)
    width = max(3.2 * columns + 1.0, 5.0)  # room for the title
    figure = Figure(figsize=(width, 3.0 * rows + 0.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    image = None
    for ax, index in zip(axes, picks, strict=False):
        plane, low = planes[index], hatched[index]
        if store:  # library (y, x) as it is
            plane, low = orientation.apply(plane), orientation.apply(low)
        elif orientation is not None:  # NIfTI: library (y, x) = (j, i)
            plane, low = orientation.apply(plane.T), orientation.apply(low.T)
        image = ax.imshow(
            np.ma.masked_invalid(plane),
            origin="upper",
            vmin=0.0,
            vmax=vmax_kpa,
            cmap="viridis",
            aspect=rows_spacing / columns_spacing,
            interpolation="nearest",
        )
        if low.any() and min(low.shape) >= 2:
            ax.contourf(
                low.astype(float),
                levels=[0.5, 1.5],
                colors="none",
                hatches=["////"],
                extend="neither",
            ).set_edgecolor("white")  # hatch.color "edge": white hatching, a thin outline
        if orientation is not None:
            _label_sides(ax, orientation.labels)
        ax.set_title(f"slice {index}" if len(planes) > 1 else method.upper(), fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    figure.colorbar(image, ax=list(axes), label="|G*| (kPa)", shrink=0.9)
    where = "radiological: image left = patient right" if orientation is not None else "array axes"
    figure.suptitle(
        f"invert --method {method}: |G*| (kPa)\n"
        f"hatched: confidence < {100 * CONFIDENCE_LEVEL:.0f} %; {where}",
        fontsize=9,
    )
    return figure, vmax_kpa


def _label_sides(ax, labels: dict[str, str]) -> None:
    style = {"fontsize": 9, "fontweight": "bold", "color": "white", "transform": ax.transAxes}
    box = {"facecolor": "black", "alpha": 0.5, "pad": 1.0, "edgecolor": "none"}
    for side, (x, y, ha, va) in {
        "left": (0.01, 0.5, "left", "center"),
        "right": (0.99, 0.5, "right", "center"),
        "top": (0.5, 0.99, "center", "top"),
        "bottom": (0.5, 0.01, "center", "bottom"),
    }.items():
        ax.text(x, y, labels[side], ha=ha, va=va, bbox=box, **style)
