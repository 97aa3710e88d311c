"""Time one DIME training step on CPU: float32 (the baseline) against channels-last memory and
bf16-mixed autocast, alone and together, in the same process.

    python benchmarks/bench_dime_train_step.py [--runs 20] [--threads 2] [--batch-size 64]
        [--out benchmarks/results/dime_train_step.json]

A step is what Lightning runs per batch: the input normalisation, forward, the masked loss,
backward and AdamW, on the default network (32² patches) with random inputs (the time does not
depend on the values). Three untimed warm-up steps per variant, then the median of the timed
ones; ratios are the baseline's median over each variant's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from common import machine, write_report

from dime_pipeline.dime.module import masked_losses
from dime_pipeline.dime.network import DimeUNet
from dime_pipeline.dime.normalization import normalize_patches
from dime_pipeline.dime.settings import OptimConfig, UNetConfig

VARIANTS = {
    "float32": (False, False),
    "channels_last": (True, False),
    "bf16_mixed": (False, True),
    "channels_last_bf16_mixed": (True, True),
}


def step_times(channels_last: bool, bf16: bool, batch: int, runs: int) -> list[float]:
    torch.manual_seed(0)
    config = UNetConfig()
    size = config.patch_size
    network = DimeUNet(config)
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    field = torch.randn(batch, 2, size, size)
    mask = torch.ones(batch, 1, size, size)
    data = {"valid": mask, "target": torch.randn(batch, 2, size, size)}
    times = []
    for i in range(runs + 3):
        start = time.perf_counter()
        inputs, _ = normalize_patches(field, mask)
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            output = network(inputs)
        loss = masked_losses(output.float(), data, OptimConfig())["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/dime_train_step.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for name, (channels_last, bf16) in VARIANTS.items():
        median = statistics.median(step_times(channels_last, bf16, args.batch_size, args.runs))
        results[name] = {"median_s": median, "crops_per_s": args.batch_size / median}
    baseline = results["float32"]["median_s"]
    for name, result in results.items():
        result["speedup"] = baseline / result["median_s"]
        print(
            f"{name:26s} {result['median_s'] * 1e3:6.1f} ms/step  "
            f"{result['crops_per_s']:6.0f} crops/s  ×{result['speedup']:.2f}"
        )
    report = {
        "benchmark": "dime_train_step",
        "machine": machine(threads=args.threads),
        "batch_size": args.batch_size,
        "runs": args.runs,
        "variants": results,
    }
    write_report(args.out, report)


if __name__ == "__main__":
    main()
