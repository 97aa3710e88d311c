"""Peak memory of each inversion per byte of the complex field: the constant behind
``userdata.WORK_PER_FIELD_BYTE`` (``invert`` refuses an INPUT whose estimate exceeds memory).

    python benchmarks/bench_invert_memory.py [--sizes 256 1024] [--out FILE.json]

Each (method, size) runs in a fresh process (peak RSS only grows); the slope between the two
sizes removes what does not scale with the field (imports, torch, the model).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from common import machine, write_report

PROBE = """
import resource, sys
import numpy as np
from dime_pipeline.inversion.methods import inverter
method, n = sys.argv[1], int(sys.argv[2])
y, x = np.mgrid[:n, :n]
field = np.stack([np.exp(2j * np.pi * (0.05 * x + 0.03 * k * y)) for k in (1, 2, 3)])
invert, _ = inverter(method, None)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
invert(field, (1.5e-3, 1.5e-3), 60.0, 1000.0, np.ones((n, n), bool))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(field.nbytes, (peak - base) * 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[256, 1024])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/invert_memory.json"))
    args = parser.parse_args()
    results = {}
    for method in ("mmdi", "di", "dime"):
        runs = []
        for size in args.sizes:
            out = subprocess.run(
                [sys.executable, "-c", PROBE, method, str(size)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            runs.append({"size": size, "field_bytes": int(out[0]), "peak_bytes": int(out[1])})
        small, large = runs
        slope = (large["peak_bytes"] - small["peak_bytes"]) / (
            large["field_bytes"] - small["field_bytes"]
        )
        results[method] = {"runs": runs, "peak_bytes_per_field_byte": round(slope, 1)}
        print(f"{method}: {slope:.1f} bytes of peak memory per byte of complex field")
    write_report(args.out, {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
