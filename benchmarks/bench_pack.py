"""Memory and time of ``pack`` on many 256² acquired stores: it must hold one sample, not a split.

Run: ``.venv/bin/python benchmarks/bench_pack.py [--stores 200] [--repeats 3]`` (writes
``benchmarks/results/pack.json``). All stores go to the train split. The baseline, in the same
process, is reading every store once (``read_sample``): packing reads each store twice (check,
then copy) and writes it once. Memory is Python's peak allocation while packing (tracemalloc,
which sees numpy's buffers), beside the size of the split's arrays that a writer holding the
split would need.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from common import RESULTS, machine, write_report

from dime_pipeline.acquisition import AcquisitionParams, acquire
from dime_pipeline.datasets import IMAGE_ARRAYS, PACK_ARRAYS
from dime_pipeline.packing import pack_stores
from dime_pipeline.store import Sample, read_sample, write_sample

SHAPE = (256, 256)
VOXEL_M = 1.5e-3


def plane_wave_sample(seed: int) -> Sample:
    """A shear wave in a disc of tissue: the arrays and attributes of a simulated store."""
    y, x = np.indices(SHAPE)
    mask = (x - SHAPE[1] / 2) ** 2 + (y - SHAPE[0] / 2) ** 2 < (0.45 * SHAPE[0]) ** 2
    field = 1e-5 * np.exp(-1j * (0.2 + 0.01 * seed) * (x + 0.5 * y)) * mask
    return Sample(
        displacement=np.stack([field, 0.5 * field, 2j * field]),
        modulus=np.where(mask, 2000 + 400j, 0),
        mask=mask,
        labels=mask.astype(np.int16),
        attrs={
            "family": "homogeneous",
            "seed": seed,
            "frequency_hz": 60.0,
            "voxel_size_m": [VOXEL_M, VOXEL_M],
            "density_kg_m3": 1000.0,
            "config_hash": "bench",
            "components": ["x", "y", "z"],
            "solver": {"dofs": {}, "ranks": 1, "seconds": {}, "versions": {}},
        },
    )


def run(count: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-pack-") as work:
        return _measure(Path(work), count, repeats)


def _measure(work: Path, count: int, repeats: int) -> dict:
    stores = []
    for seed in range(count):
        stores.append(work / "stores" / f"{seed}.zarr")
        write_sample(stores[-1], acquire(plane_wave_sample(seed), AcquisitionParams(snr=10), seed))
    sample = read_sample(stores[0])
    sample_bytes = sum(
        getattr(sample, name).astype(PACK_ARRAYS[name]).nbytes for name in IMAGE_ARRAYS
    )

    read_seconds, pack_seconds, peaks = [], [], []
    for repeat in range(repeats):
        start = time.perf_counter()
        for store in stores:
            read_sample(store)
        read_seconds.append(time.perf_counter() - start)

        tracemalloc.start()
        start = time.perf_counter()
        pack_stores(stores, work / f"packs-{repeat}", fractions=(1.0, 0.0, 0.0))
        pack_seconds.append(time.perf_counter() - start)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    peak = statistics.median(peaks)
    return {
        "benchmark": "pack",
        "stores": count,
        "grid": list(SHAPE),
        "repeats": repeats,
        "sample_mb": round(sample_bytes / 1e6, 3),
        "split_mb": round(count * sample_bytes / 1e6, 1),
        "median_peak_allocated_mb": round(peak / 1e6, 2),
        "peak_over_split": round(peak / (count * sample_bytes), 4),
        "median_read_all_seconds": round(statistics.median(read_seconds), 3),
        "median_pack_seconds": round(statistics.median(pack_seconds), 3),
        "pack_over_read_all": round(
            statistics.median(pack_seconds) / statistics.median(read_seconds), 2
        ),
        "pack_ms_per_store": round(1e3 * statistics.median(pack_seconds) / count, 1),
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = run(args.stores, args.repeats)
    write_report(RESULTS / "pack.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
