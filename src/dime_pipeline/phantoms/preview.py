"""A preview figure per phantom: region map with outlines and names, and |G*| in kPa.

Both panels are on the voxel grid (one row per slice in 3D). Labels come from the mesh itself
(the cell holding each voxel centre), |G*| from the region's G* times the modulus field where
there is one, as the ground truth will be. The PNG carries no timestamp or version metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dime_pipeline.phantoms.fields import sample_field
from dime_pipeline.phantoms.geometry import outline_radius
from dime_pipeline.phantoms.meshing import locate_labels
from dime_pipeline.phantoms.spec import MESH_FILE, PhantomSpec

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_ROWS = 8  # 3D: at most this many slices are shown (evenly spread)


def preview_maps(spec: PhantomSpec, phantom_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels, |G*| in kPa) on the grid, shape ``spec.grid.shape``; 0 outside the tissue."""
    points = spec.grid.pixel_centres()
    labels = locate_labels(Path(phantom_dir) / MESH_FILE, points, spec.dim)
    modulus = np.zeros(len(points))
    for region in spec.regions:
        modulus[labels == region.tag] = abs(region.shear_modulus)
    field = spec.modulus_field
    if field is not None:
        values = np.load(Path(phantom_dir) / field.file)
        scaled = np.isin(labels, field.region_tags)
        modulus[scaled] *= sample_field(field, values, points[scaled])
    return labels.reshape(spec.grid.shape), 1e-3 * modulus.reshape(spec.grid.shape)


def write_preview(spec: PhantomSpec, phantom_dir: Path, out: Path) -> None:
    """Write the preview PNG of the phantom in ``phantom_dir`` (mesh and field already there).

    Uses a bare ``Figure`` (Agg canvas), so no pyplot state or backend switch leaks out."""
    from matplotlib.figure import Figure

    labels, modulus = preview_maps(spec, phantom_dir)
    if spec.dim == 2:
        labels, modulus = labels[None], modulus[None]
    rows = np.unique(
        np.linspace(0, len(labels) - 1, min(len(labels), MAX_ROWS)).round().astype(int)
    )
    fig = Figure(figsize=(11, 4 * len(rows)), layout="tight")
    axes = fig.subplots(len(rows), 2, squeeze=False)
    extent = extent_mm(spec)
    vmax = max(float(modulus.max()), 1e-3)
    for row, k in enumerate(rows):
        draw_regions(axes[row, 0], spec, labels[k], extent)
        _draw_modulus(fig, axes[row, 1], modulus[k], extent, vmax)
        axes[row, 1].set_title(f"|G*| at {spec.frequency_hz:.1f} Hz{_slice_title(spec, k)}")
    fig.suptitle(_title(spec))
    fig.savefig(out, dpi=80, metadata={"Software": None})


def _draw_modulus(
    fig: Figure, ax: Axes, modulus: np.ndarray, extent: list[float], vmax: float
) -> None:
    image = ax.imshow(
        np.ma.masked_equal(modulus, 0.0),
        origin="lower",
        extent=extent,
        cmap="viridis",
        vmin=0.0,
        vmax=vmax,
    )
    fig.colorbar(image, ax=ax, label="|G*| (kPa)", shrink=0.8)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")


def extent_mm(spec: PhantomSpec) -> list[float]:
    x, y = spec.grid.axes()[:2]
    half = 0.5 * spec.grid.voxel_size_m
    return [1e3 * (x[0] - half), 1e3 * (x[-1] + half), 1e3 * (y[0] - half), 1e3 * (y[-1] + half)]


def draw_regions(ax: Axes, spec: PhantomSpec, labels: np.ndarray, extent: list[float]) -> None:
    from matplotlib import colormaps
    from matplotlib.patches import Patch

    palette = colormaps["tab20"]
    colours = np.ones((*labels.shape, 4))
    handles = []
    for n, region in enumerate(spec.regions):
        inside = labels == region.tag
        colours[inside] = palette(n % 20)
        if inside.any():
            ax.contour(inside.astype(float), levels=[0.5], colors="k", linewidths=0.6,
                       origin="lower", extent=extent)  # fmt: skip
        handles.append(Patch(color=palette(n % 20), label=f"{region.tag} {region.name}"))
    ax.imshow(colours, origin="lower", extent=extent)
    _draw_boundary(ax, spec)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    ax.set_title(f"regions; {spec.wave_pattern.replace('_', '-')}: drivers in red")


def _draw_boundary(ax: Axes, spec: PhantomSpec) -> None:
    """Every driver (red, numbered when there are several; 3D: a triangle at its patch
    centre, whichever slice is shown) and, in 2D, the traction-free arcs of a mixed outline
    (blue dashes)."""
    outline = spec.geometry["shapes"][0] if "shapes" in spec.geometry else spec.geometry
    if "outline" in outline:  # the liver's 3D skin prism
        outline = outline["outline"]
    radial = outline.get("type") != "ellipsoid"
    cx, cy = spec.geometry["centre_m"][:2]

    def trace(start: float, length: float, **style: object) -> None:
        if radial:
            theta = start + np.linspace(0.0, length, 60)
            radius = outline_radius(outline, theta)
            x, y = cx + radius * np.cos(theta), cy + radius * np.sin(theta)
            ax.plot(1e3 * x, 1e3 * y, **style)

    for start, length in spec.geometry.get("boundary", {}).get("free_arcs", []):
        trace(start, length, color="tab:blue", lw=2, ls="--")
    for k, driver in enumerate(spec.drivers, start=1):
        if driver.centre_m is None:  # an arc of the 2D outline, or a whole outline
            trace(driver.start_angle_rad, driver.arc_rad, color="r", lw=3)
            theta = driver.start_angle_rad + 0.5 * min(driver.arc_rad, np.pi)
        else:
            x, y = driver.centre_m[:2]
            ax.plot(1e3 * x, 1e3 * y, "r^", ms=9)
            theta = float(np.arctan2(y - cy, x - cx))
        if len(spec.drivers) > 1:
            reach = (
                0.85
                * (  # inside the outline: never clipped by the axes
                    float(outline_radius(outline, np.array([theta]))[0])
                    if radial
                    else max(outline["semi_axes_m"][:2])
                )
            )
            x, y = cx + reach * np.cos(theta), cy + reach * np.sin(theta)
            ax.annotate(f"D{k}", (1e3 * x, 1e3 * y), color="r", fontsize=8, ha="center")


def _slice_title(spec: PhantomSpec, k: int) -> str:
    if spec.dim == 2:
        return ""
    z = spec.grid.axes()[2][k]
    return f", slice {k} (z = {1e3 * z:.1f} mm)"


def _title(spec: PhantomSpec) -> str:
    text = f"{spec.family} {spec.dim}D, seed {spec.seed}"
    if spec.family == "liver":
        text += f", stage {spec.geometry['stage']}"
    if spec.modulus_field is not None:
        text += f", random field σ = {spec.modulus_field.sigma:g}"
    return text
