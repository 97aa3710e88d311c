"""Time DIME's sliding window on a 256² slice: ours vs the authors' stride-3 30×30 window.

    python benchmarks/bench_dime_inference.py [--runs 5] [--authors-runs 3] [--threads 2]
        [--device cpu] [--out benchmarks/results/dime_inference.json]

Ours: the default network (UNetConfig()), 32×32 windows at stride 16 (P/2), also at stride 8
(P/4). Authors' style: the same network with 30×30 windows at stride 3, run through the same
vectorised code (so this is a lower bound for a per-patch loop). Both on a full field-of-view
mask (worst case) and on a liver-like ellipse covering about 30 % of the field of view, one
component, and three components for ours. The network is untrained: the time does not depend
on its weights. One untimed warm-up run each, then the median of the timed runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import machine, write_report

from dime_pipeline.dime import DimeUNet, UNetConfig, as_model, invert_dime, load_model
from dime_pipeline.dime.inference import window_padding
from dime_pipeline.dime.model_file import DimeModel
from dime_pipeline.dime.network import parameter_count

FREQUENCY_HZ = 60.0
PIXEL_M = 1.4e-3
MODULUS = 2500 + 500j


def make_field(size: int, components: int, seed: int = 0, pixel_m: float = PIXEL_M) -> np.ndarray:
    """(components, size, size) complex: three plane waves per component plus noise (SNR 20).

    Undamped waves (real k) so that all components have comparable amplitude everywhere: the
    sliding window then evaluates every component in every window (the worst case).
    """
    rng = np.random.default_rng(seed)
    k = (2 * np.pi * FREQUENCY_HZ * np.sqrt(1000.0 / MODULUS)).real
    y, x = np.indices((size, size)) * pixel_m
    fields = []
    for _ in range(components):
        field = sum(
            np.exp(-1j * k * (np.cos(a) * x + np.sin(a) * y) + 1j * rng.uniform(0, 2 * np.pi))
            for a in rng.uniform(0, 2 * np.pi, 3)
        )
        sigma = np.sqrt(np.mean(np.abs(field) ** 2)) / 20.0
        fields.append(
            field + sigma * (rng.normal(size=field.shape) + 1j * rng.normal(size=field.shape))
        )
    return np.stack(fields)


def liver_mask(size: int) -> np.ndarray:
    """An ellipse off-centre, about 30 % of the field of view."""
    y, x = np.indices((size, size)) / size
    return ((x - 0.42) / 0.36) ** 2 + ((y - 0.5) / 0.27) ** 2 < 1


def windows(mask: np.ndarray, patch: int, stride: int) -> int:
    """Windows the sliding window evaluates (those touching the mask), per component."""
    (top, _, rows), (left, _, cols) = (window_padding(n, patch, stride) for n in mask.shape)
    padded = np.pad(mask, ((top, patch), (left, patch)))
    return sum(
        padded[r * stride : r * stride + patch, c * stride : c * stride + patch].any()
        for r in range(rows)
        for c in range(cols)
    )


def time_runs(run: Callable[[], object], runs: int) -> list[float]:
    run()  # warm-up: allocator, oneDNN kernels
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return seconds


def case(
    name: str,
    network: DimeUNet | DimeModel,
    field,
    mask,
    stride: int,
    runs: int,
    device: str,
    adapt: bool = False,
    pixel_m: float = PIXEL_M,
) -> dict:
    """The untrained network's cases run one pass (``adapt`` off: its random output would pick
    random scales); the shipped model's run as users get it (``adapt`` on)."""
    model = network if isinstance(network, DimeModel) else as_model(network, device=device)
    network = model.network

    def run() -> object:
        return invert_dime(
            field, mask, FREQUENCY_HZ, pixel_m, model=model, stride=stride, adapt=adapt
        )

    seconds = time_runs(run, runs)
    result = {
        "case": name,
        "patch": network.config.patch_size,
        "stride": stride,
        "components": len(field),
        "mask_fraction": round(float(mask.mean()), 3),
        "windows_per_component": int(windows(mask, network.config.patch_size, stride)),
        "seconds": {"median": statistics.median(seconds), "all": seconds},
    }
    print(f"{name:40s} {result['seconds']['median']:8.3f} s", file=sys.stderr)
    return result


def torch_facts(threads: int, device: str) -> dict[str, object]:
    return {
        "torch_threads": threads,
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "torch": str(torch.__version__),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--authors-runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    default_out = Path(__file__).parent / "results" / "dime_inference.json"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    ours, authors = DimeUNet(UNetConfig()).eval(), DimeUNet(UNetConfig(patch_size=30)).eval()
    full, liver = np.ones((args.size, args.size), bool), liver_mask(args.size)
    one, three = make_field(args.size, 1), make_field(args.size, 3)
    p, d = ours.config.patch_size, args.device
    results = [
        case("ours, 1 component, full FOV", ours, one, full, p // 2, args.runs, d),
        case("ours, 1 component, liver mask", ours, one, liver, p // 2, args.runs, d),
        case("ours, 3 components, liver mask", ours, three, liver, p // 2, args.runs, d),
        case("ours, 3 components, full FOV", ours, three, full, p // 2, args.runs, d),
        case("ours stride P/4, 1 component, full FOV", ours, one, full, p // 4, args.runs, d),
        case("authors 30/3, 1 component, full FOV", authors, one, full, 3, args.authors_runs, d),
        case("authors 30/3, 1 component, liver mask", authors, one, liver, 3, args.authors_runs, d),
    ]
    # The shipped model with wavelength adaptivity, as `invert` runs it: a 256² slice whose
    # wavelength lies in the band (one pass: about 20 px per wavelength at the default pixel)
    # and one whose wavelength spans 80 px (a second pass on a 4x coarser slice).
    shipped = load_model(None, d)
    long_pixel = PIXEL_M * (20.0 / 80.0)  # the same waves on 4x finer pixels: 80 px each
    results += [
        case(
            "shipped, adaptive, 1 component, in band",
            shipped,
            one,
            full,
            p // 2,
            args.runs,
            d,
            adapt=True,
        ),
        case(
            "shipped, adaptive, 1 component, 80 px/λ",
            shipped,
            make_field(args.size, 1, pixel_m=long_pixel),
            full,
            p // 2,
            args.runs,
            d,
            adapt=True,
            pixel_m=long_pixel,
        ),
    ]
    report = {
        "benchmark": "dime_inference",
        "shape": [args.size, args.size],
        "network": ours.config.model_dump(),
        "parameters": parameter_count(ours),
        "model_mb_float32": round(parameter_count(ours) * 4 / 1e6, 2),
        "results": results,
        "authors_over_ours_full_fov": results[5]["seconds"]["median"]
        / results[0]["seconds"]["median"],
        "machine": machine(**torch_facts(args.threads, args.device)),
    }
    write_report(args.out, report)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
