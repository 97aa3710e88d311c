"""Time MMDI on a 256² single-component slice, with plain DI in the same process as a baseline.

    python benchmarks/bench_mmdi.py [--runs 7] [--size 256] [--out benchmarks/results/mmdi.json]

The field is three plane waves (2.5 kPa, 60 Hz, 1.4 mm pixels: a 36 cm field of view) plus
complex Gaussian noise at SNR 20; the timings do not depend on the content. One untimed warm-up
run each, then ``--runs`` timed runs; the JSON holds the median and all runs in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import scipy
from common import machine, write_report

from dime_pipeline.inversion import MMDIParameters, direct_inversion, mmdi

FREQUENCY_HZ = 60.0
PIXEL_M = 1.4e-3
MODULUS = 2500 + 500j


def make_field(size: int, seed: int = 0) -> np.ndarray:
    """(1, size, size) complex: three plane waves from different directions plus noise."""
    rng = np.random.default_rng(seed)
    k = 2 * np.pi * FREQUENCY_HZ * np.sqrt(1000.0 / MODULUS)
    y, x = np.indices((size, size)) * PIXEL_M
    field = sum(
        np.exp(-1j * k * (np.cos(a) * x + np.sin(a) * y) + 1j * rng.uniform(0, 2 * np.pi))
        for a in rng.uniform(0, 2 * np.pi, 3)
    )
    sigma = np.sqrt(np.mean(np.abs(field) ** 2)) / 20.0
    noise = rng.standard_normal(field.shape) + 1j * rng.standard_normal(field.shape)
    return (field + sigma / np.sqrt(2) * noise)[None]


def time_runs(invert: Callable[[], object], runs: int) -> list[float]:
    invert()  # warm-up: FFT plans, page faults
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        invert()
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "mmdi.json")
    args = parser.parse_args(argv)

    field = make_field(args.size)
    params = MMDIParameters()
    mmdi_seconds = time_runs(lambda: mmdi(field, PIXEL_M, FREQUENCY_HZ, params=params), args.runs)
    di_seconds = time_runs(lambda: direct_inversion(field, PIXEL_M, FREQUENCY_HZ), args.runs)
    mmdi_median, di_median = statistics.median(mmdi_seconds), statistics.median(di_seconds)
    report = {
        "benchmark": "mmdi",
        "shape": list(field.shape),
        "axes": ["component", "y", "x"],
        "voxel_size_m": PIXEL_M,
        "frequency_hz": FREQUENCY_HZ,
        "runs": args.runs,
        "mmdi_seconds": {"median": mmdi_median, "all": mmdi_seconds},
        "di_seconds": {"median": di_median, "all": di_seconds},
        "mmdi_over_di": mmdi_median / di_median,
        "mmdi_parameters": asdict(params),
        "machine": machine(
            usable_cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            numpy=np.__version__,
            scipy=scipy.__version__,
        ),
    }
    write_report(args.out, report)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
