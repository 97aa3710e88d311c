"""DIME beside MMDI and DI on clinical-scale 2D liver MRE: the held-back half of MMDI's
calibration study (docs/mmdi.md, "Calibrated defaults"), which no DIME model trained on.

    python benchmarks/dime_clinical.py PACK:STORE[,STORE…] [PACK:… …] [--out FILE]

Each argument names a test pack and the estimates stores inverted from it (each store names its
method); the packs' rows are pooled. The study acquires through-plane motion only at OSS-SNR
3, 5, 10, 20 and noise-free, so rows are grouped by the nominal level in their source store's
name (``snr-5.zarr``; the pack's ``snr`` column holds each row's amplitude SNR, which varies).
Metrics are the workflow's (``dime_pipeline.evaluation``): pixel-level |G*| over the mask,
pooled per level and method.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from dime_pipeline.datasets import Pack
from dime_pipeline.errors import UserError
from dime_pipeline.evaluation.evaluate import evaluate
from dime_pipeline.evaluation.scoring import RowResult, group_metrics

LEVEL = re.compile(r"snr-([^/]+)\.zarr$")


def parse(argument: str) -> tuple[Path, list[Path]]:
    pack, _, stores = argument.partition(":")
    paths = [Path(item) for item in stores.split(",") if item]
    if not paths:
        raise UserError(f"{argument!r}: give PACK:STORE[,STORE…]")
    return Path(pack), paths


def pooled(arguments: list[str]) -> dict[str, Any]:
    results: dict[str, dict[str, list[RowResult]]] = defaultdict(lambda: defaultdict(list))
    for argument in arguments:
        pack_path, stores = parse(argument)
        sources = Pack(pack_path).attrs["sources"]
        evaluation = evaluate(pack_path, stores)
        for method in evaluation.methods:
            for row in evaluation.rows:
                match = LEVEL.search(sources[row.index])
                level = match.group(1) if match else "unknown"
                results[level][method].append(evaluation.results[method][row.index])
                results["all"][method].append(evaluation.results[method][row.index])
    table: dict[str, Any] = {}
    for level in sorted(results, key=_level_order):
        table[level] = {}
        for method, rows in results[level].items():
            headline = group_metrics(rows)["headline"]
            table[level][method] = {
                key: headline[key] for key in ("n_samples", "pearson_r", "bias_pct", "mape_pct")
            }
    return table


def _level_order(level: str) -> float:
    return {"all": 1e9, "inf": 1e8}.get(level, float(level) if level[0].isdigit() else 1e7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packs", nargs="+", help="PACK:STORE[,STORE…]")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    table = pooled(args.packs)
    for level, methods in table.items():
        cells = ", ".join(
            f"{m} r {v['pearson_r']:.2f} bias {v['bias_pct']:+.1f} %" for m, v in methods.items()
        )
        print(f"OSS-SNR {level}: {cells}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"arguments": args.packs, "levels": table}, indent=2) + "\n")


if __name__ == "__main__":
    try:
        main()
    except UserError as error:  # a missing pack or store: one line, nothing written
        raise SystemExit(f"{Path(__file__).name}: error: {error}") from None
