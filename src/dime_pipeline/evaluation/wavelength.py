"""The wavelength sweep: every method on exact scattering scenes across wavelengths in pixels.

A method's accuracy should not depend on how many pixels a shear wavelength spans. Each scene is
exact (``exact.CylinderScattering``): a background of G* = 2 + 0.2i kPa at 60 Hz (a 23.7 mm
wavelength) holding one cylinder 3× stiffer, ``diameter`` background wavelengths across, lit by
plane waves from three directions (the three components of the field); the pixel is set so that a
background wavelength spans ``px`` pixels, over a square field of view of max(6, diameter + 3)
wavelengths, at most ``MAX_SIDE`` px a side. Per method, px and diameter:

- ``pixel_r``: Pearson r of |G*| against the truth within 1.5 wavelengths of the cylinder;
- ``background_bias``: median |G*| over the background 0.5–1.5 wavelengths from the cylinder,
  over the truth, minus 1;
- ``inclusion_bias``: the same inside the cylinder (its pixels more than one from its edge).

``dime-pipeline wavelength-sweep`` writes the document (``results/metrics/wavelength.json`` in
the workflow) and its figure; the report shows both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from dime_pipeline.exact import CylinderScattering, shear_wavenumber

FREQUENCY_HZ = 60.0
DENSITY = 1000.0
BACKGROUND = 2000 + 200j
CONTRAST = 3.0
ANGLES = (0.0, 2 * math.pi / 3, 4 * math.pi / 3)
# The quick default (the workflow's; about 20 s on 2 cores); the model card's full sweep passes
# px 8, 12, 20, 30, 40, 60, 80 and diameters 0.5, 1, 2, 3 (docs/evaluation.md).
PX_PER_WAVELENGTH = (10, 30, 80)
DIAMETERS = (1.0,)
MAX_SIDE = 480


def scene(px: float, diameter: float) -> dict[str, Any]:
    """The exact fields (3, n, n), voxel size, true |G*| and the scored regions of one scene."""
    wavelength = 2 * math.pi / shear_wavenumber(BACKGROUND, FREQUENCY_HZ, DENSITY).real
    radius = 0.5 * diameter * wavelength
    scatterer = CylinderScattering(BACKGROUND, CONTRAST * BACKGROUND, radius, FREQUENCY_HZ, DENSITY)
    voxel = wavelength / px
    n = int(min(max(6.0, diameter + 3.0) * px, MAX_SIDE))
    axis = (np.arange(n) - (n - 1) / 2) * voxel
    x, y = np.meshgrid(axis, axis)
    r = np.hypot(x, y)
    inside = r < radius
    truth = np.where(inside, abs(scatterer.inclusion), abs(scatterer.background))
    return {
        "fields": scatterer.field(x, y, list(ANGLES)),
        "voxel_m": voxel,
        "truth": truth,
        "scored": r < radius + 1.5 * wavelength,
        "background": (r > radius + 0.5 * wavelength) & (r < radius + 1.5 * wavelength),
        "inclusion": ndimage.binary_erosion(inside),
    }


def sweep(
    inverters: Mapping[str, Any],
    px_levels: Sequence[float] = PX_PER_WAVELENGTH,
    diameters: Sequence[float] = DIAMETERS,
) -> dict[str, Any]:
    """The sweep document: {"px_per_wavelength", "diameters_wavelengths", "scene", "methods":
    {method: {diameter: [row per px]}}}; ``inverters`` as ``inversion.methods.inverter`` gives."""
    methods: dict[str, dict[str, list[dict[str, float]]]] = {name: {} for name in inverters}
    for diameter in diameters:
        for px in px_levels:
            case = scene(px, diameter)
            for name, invert in inverters.items():
                result = invert(case["fields"], case["voxel_m"], FREQUENCY_HZ, DENSITY, None)
                methods[name].setdefault(f"{diameter:g}", []).append(
                    {"px": float(px), **_scores(result.magnitude, result.valid, case)}
                )
    return {
        "px_per_wavelength": [float(p) for p in px_levels],
        "diameters_wavelengths": [float(d) for d in diameters],
        "scene": {
            "frequency_hz": FREQUENCY_HZ,
            "background_pa": [BACKGROUND.real, BACKGROUND.imag],
            "contrast": CONTRAST,
            "incident_angles_rad": list(ANGLES),
            "max_side_px": MAX_SIDE,
        },
        "methods": methods,
    }


def _scores(magnitude: np.ndarray, valid: np.ndarray, case: Mapping[str, Any]) -> dict[str, float]:
    truth = case["truth"]
    scored = case["scored"] & valid
    out = {"pixel_r": float("nan"), "background_bias": float("nan"), "inclusion_bias": float("nan")}
    if scored.sum() > 2:
        out["pixel_r"] = float(np.corrcoef(magnitude[scored], truth[scored])[0, 1])
    for key, region in (("background_bias", "background"), ("inclusion_bias", "inclusion")):
        pixels = case[region] & valid
        if pixels.any():
            out[key] = float(np.median(magnitude[pixels]) / np.median(truth[pixels]) - 1)
    return out


def sweep_figure(document: Mapping[str, Any], titles: Mapping[str, str]) -> Any:
    """Pixel r and inclusion bias against px per wavelength: one panel pair per diameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    diameters = [f"{d:g}" for d in document["diameters_wavelengths"]]
    fig, axes = plt.subplots(
        2, len(diameters), figsize=(3.2 * len(diameters) + 1, 5.6), squeeze=False, sharex=True
    )
    for column, diameter in enumerate(diameters):
        for method, by_diameter in document["methods"].items():
            rows = by_diameter[diameter]
            px = [row["px"] for row in rows]
            label = titles.get(method, method)
            axes[0, column].plot(px, [row["pixel_r"] for row in rows], "o-", label=label)
            bias = [100 * row["inclusion_bias"] for row in rows]
            axes[1, column].plot(px, bias, "o-", label=label)
        axes[0, column].set_title(f"inclusion {diameter} λ across")
        axes[0, column].set_ylim(-0.2, 1.02)
        axes[1, column].axhspan(-10, 10, color="0.92")
        axes[1, column].set_xlabel("px per wavelength")
        for ax in axes[:, column]:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xticks(document["px_per_wavelength"])
            ax.set_xticklabels([f"{p:g}" for p in document["px_per_wavelength"]])
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("pixel r")
    axes[1, 0].set_ylabel("inclusion |G*| bias (%)")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig
