"""The figure of docs/wave-fields.md: one phantom per wave pattern, its regions and drivers
(as the previews draw them) above the real part of the simulated wave field it produces.

    python scripts/wave_patterns.py [--out docs/images/wave-patterns.png]

Four 2D phantoms of 80² pixels of 2 mm at 60 Hz, each drawn with the config that makes its
pattern (``PATTERNS``), meshed, solved with the FEM solver (a JIT cache under .cache/fenics),
and plotted: the out-of-plane component for the converging disc (driven through-plane), the
in-plane component of largest amplitude otherwise. About a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from dime_pipeline.config import validate_config
from dime_pipeline.fem.simulate import simulate
from dime_pipeline.phantoms import make_phantom
from dime_pipeline.phantoms.preview import draw_regions, extent_mm, preview_maps
from dime_pipeline.store import read_sample

REPO = Path(__file__).resolve().parents[1]
BASE = {
    "grid": {"shape": [80, 80], "voxel_size_mm": 2.0},
    "frequency_hz": {"min": 60.0, "max": 60.0},
}
# pattern -> (family, seed, config keys that make it)
PATTERNS = {
    "absorbing": ("heterogeneous", 3, {}),
    "reflecting": ("liver", 2, {}),
    "multi_driver": (
        "homogeneous",
        1,
        {"driver": {"count": {"min": 3, "max": 3}, "directions": {"normal": 1, "tangential": 1}}},
    ),
    "converging": (
        "heterogeneous",
        4,
        {"driver": {"whole_outline": 1.0, "directions": {"through_plane": 1}}},
    ),
}


def main() -> None:
    from matplotlib.figure import Figure

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs/images/wave-patterns.png")
    parser.add_argument("--jit-cache", type=Path, default=REPO / ".cache/fenics")
    args = parser.parse_args()
    fig = Figure(figsize=(4.2 * len(PATTERNS), 8.0), layout="constrained")
    axes = fig.subplots(2, len(PATTERNS), squeeze=False)
    with tempfile.TemporaryDirectory() as tmp:
        for column, (pattern, (family, seed, extra)) in enumerate(PATTERNS.items()):
            config = validate_config({**BASE, **extra})
            phantom = Path(tmp) / pattern
            spec = make_phantom(family, seed, config, phantom, preview=False)
            assert spec.wave_pattern == pattern, (pattern, spec.wave_pattern)
            simulate(phantom, Path(tmp) / f"{pattern}.zarr", args.jit_cache)
            sample = read_sample(Path(tmp) / f"{pattern}.zarr")
            labels, _ = preview_maps(spec, phantom)
            extent = extent_mm(spec)
            top, bottom = axes[0, column], axes[1, column]
            draw_regions(top, spec, labels, extent)
            top.get_legend().remove()
            top.set_title(f"{pattern.replace('_', '-')}: {family}")
            field = sample.displacement
            component = (
                2 if pattern == "converging" else int(np.argmax(np.abs(field[:2]).max(axis=(1, 2))))
            )
            values = np.ma.masked_where(~sample.mask, field[component].real)
            limit = float(np.percentile(np.abs(values.compressed()), 98))  # drivers saturate
            bottom.imshow(
                values, origin="lower", extent=extent, cmap="RdBu_r", vmin=-limit, vmax=limit
            )
            bottom.set_title(f"Re u_{'xyz'[component]} at {spec.frequency_hz:.0f} Hz")
            bottom.set_xlabel("x (mm)")
            bottom.set_ylabel("y (mm)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=70, metadata={"Software": None})
    print(args.out)


if __name__ == "__main__":
    main()
