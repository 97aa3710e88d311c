"""A summary table of sample stores: what was simulated, how big and how long it took."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dime_pipeline.progressbar import each
from dime_pipeline.store import read_sample
from dime_pipeline.textio import write_text_atomic


def summarize_sample(path: Path) -> dict[str, Any]:
    sample = read_sample(path)
    attrs = sample.attrs
    inside = sample.mask
    modulus = sample.modulus[inside]
    amplitude = np.linalg.norm(np.abs(sample.displacement[:, inside]), axis=0)
    omega = 2 * np.pi * attrs["frequency_hz"]
    wavenumber = omega * np.sqrt(attrs["density_kg_m3"] / modulus.astype(complex))
    wavelength_px = 2 * np.pi / wavenumber.real / attrs["voxel_size_m"][-1]
    return {
        "store": str(path),
        "family": attrs["family"],
        "seed": attrs["seed"],
        "frequency_hz": round(attrs["frequency_hz"], 3),
        "median_abs_modulus_kpa": round(float(np.median(np.abs(modulus))) / 1e3, 4),
        "min_wavelength_px": round(float(wavelength_px.min()), 2),
        "tissue_fraction": round(float(inside.mean()), 4),
        "rms_displacement_um": round(float(np.sqrt(np.mean(amplitude**2))) * 1e6, 4),
        "dofs": attrs["solver"]["dofs"],
        "ranks": attrs["solver"]["ranks"],
        "solve_seconds": attrs["solver"]["seconds"],
    }


def write_summary(stores: Sequence[Path], out: Path) -> list[dict[str, Any]]:
    """Summarise ``stores`` into a JSON list at ``out`` and return it."""
    rows = [summarize_sample(Path(store)) for store in each(stores, "stores summarised")]
    write_text_atomic(out, json.dumps(rows, indent=2) + "\n")
    return rows
