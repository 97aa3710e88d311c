"""The shipped DIME model across wavelengths in pixels, with and without wavelength adaptivity.

    python benchmarks/bench_dime_wavelength.py [--out benchmarks/results/dime_wavelength.json]

Exact fields at 60 Hz, background G* = 2 + 0.2i kPa (λ = 23.7 mm), the pixel set so that a
wavelength spans 6 … 100 px, fields 6 wavelengths wide (at most 480 px): a plane wave at 30°
(median |G*| error away from the edges) and the Bessel-series scene of tests/test_inversion.py
(``dime_pipeline.exact``: a cylinder 3× stiffer, 1.3 wavelengths across, lit from three
directions; pixel r of |G*| with the truth within 2.5 wavelengths of its centre).
docs/dime.md#wavelength-adaptivity.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import RESULTS, machine, write_report

from dime_pipeline.dime.inference import invert_dime
from dime_pipeline.dime.model_file import load_model
from dime_pipeline.evaluation.wavelength import ANGLES
from dime_pipeline.exact import CylinderScattering, plane_wave

FREQUENCY, DENSITY = 60.0, 1000.0
BACKGROUND = 2000 + 200j
PX_PER_WAVELENGTH = (6, 8, 12, 20, 30, 40, 60, 80, 100)


def measure(model, px: int, adapt: bool) -> dict[str, float]:
    scatterer = CylinderScattering(BACKGROUND, 3 * BACKGROUND, 0.015, FREQUENCY, DENSITY)
    wavelength = 2 * np.pi / scatterer.k1.real
    voxel = wavelength / px
    n = min(6 * px, 480)
    c = (np.arange(n) - (n - 1) / 2) * voxel
    x, y = np.meshgrid(c, c)
    r = np.hypot(x, y)
    truth = np.where(r < scatterer.radius, abs(scatterer.inclusion), abs(scatterer.background))
    start = time.perf_counter()
    maps = invert_dime(
        scatterer.field(x, y, list(ANGLES)),
        None,
        FREQUENCY,
        voxel,
        DENSITY,
        model=model,
        adapt=adapt,
    )
    seconds = time.perf_counter() - start
    region = np.maximum(abs(x), abs(y)) < min(0.85 * c.max(), 2.5 * wavelength)
    plane = plane_wave(BACKGROUND, 30, (n, n), voxel, FREQUENCY, DENSITY)[None]
    flat = invert_dime(plane, None, FREQUENCY, voxel, DENSITY, model=model, adapt=adapt)
    border = max(8, px // 2)
    interior = flat["magnitude"][border:-border, border:-border]
    return {
        "scattering_pixel_r": float(np.corrcoef(maps["magnitude"][region], truth[region])[0, 1]),
        "plane_wave_error": float(np.median(interior) / abs(BACKGROUND) - 1),
        "scattering_seconds": round(seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "dime_wavelength.json")
    args = parser.parse_args()
    model = load_model(None)
    results = {}
    for adapt in (True, False):
        key = "adaptive" if adapt else "one_pass"
        results[key] = {str(px): measure(model, px, adapt) for px in PX_PER_WAVELENGTH}
        for px, row in results[key].items():
            print(
                f"{key:9s} {px:>4s} px/λ: scattering r {row['scattering_pixel_r']:.2f}, "
                f"plane wave {100 * row['plane_wave_error']:+.1f} %"
            )
    write_report(args.out, {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
