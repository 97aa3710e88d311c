"""The DIME issue's targets on a study's test split, every method beside DIME.

    python benchmarks/dime_targets.py STUDY [--estimates DIR …] [--out FILE]

STUDY is a study folder whose workflow has inverted its test split (``results/datasets/
test.zarr`` and ``results/inversions/{method}/test.zarr``); ``--estimates`` names other stores
of the same pack instead (e.g. another DIME model's, from ``dime-pipeline invert PACK --method
dime --model OTHER.pt --out DIR``). Metrics are those of the workflow's evaluation
(``dime_pipeline.evaluation``), pooled over the rows at the target levels: noise-free, SNR 10
and SNR 5 (the pooled targets), and SNR 5 alone for the liver. Targets: homogeneous inter-pixel
CV ≤ 5 % and |bias| ≤ 3 %; heterogeneous r ≥ 0.92; liver r ≥ 0.90, and ≥ 0.85 at SNR 5.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from dime_pipeline.errors import UserError
from dime_pipeline.evaluation.evaluate import evaluate
from dime_pipeline.evaluation.scoring import group_metrics

POOLED_LEVELS = (None, 10.0, 5.0)  # noise-free, SNR 10, SNR 5
TARGETS = {  # (family, levels, headline key, comparison, bound)
    "homogeneous CV %": ("homogeneous", POOLED_LEVELS, "cv_pct", "<=", 5.0),
    "homogeneous |bias| %": ("homogeneous", POOLED_LEVELS, "abs_bias_pct", "<=", 3.0),
    "heterogeneous r": ("heterogeneous", POOLED_LEVELS, "pearson_r", ">=", 0.92),
    "liver r": ("liver", POOLED_LEVELS, "pearson_r", ">=", 0.90),
    "liver r at SNR 5": ("liver", (5.0,), "pearson_r", ">=", 0.85),
}


def _at_levels(snr: float | None, levels: tuple[float | None, ...]) -> bool:
    noise_free = snr is None or not math.isfinite(snr)
    return any(
        (level is None and noise_free)
        or (level is not None and not noise_free and math.isclose(snr, level, rel_tol=1e-6))
        for level in levels
    )


def measure(truth: Path, estimates: list[Path]) -> dict[str, Any]:
    evaluation = evaluate(truth, estimates)
    table: dict[str, Any] = {}
    for name, (family, levels, key, comparison, bound) in TARGETS.items():
        rows = [
            row.index
            for row in evaluation.rows
            if row.family == family and _at_levels(row.snr, levels)
        ]
        table[name] = {"target": f"{comparison} {bound:g}", "n_samples": len(rows), "methods": {}}
        for method in evaluation.methods:
            headline = group_metrics(evaluation.results[method][i] for i in rows)["headline"]
            value = abs(headline["bias_pct"]) if key == "abs_bias_pct" else headline[key]
            met = value <= bound if comparison == "<=" else value >= bound
            table[name]["methods"][method] = {"value": value, "met": bool(met)}
    return {"truth": str(truth), "estimates": [str(p) for p in estimates], "targets": table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--estimates", type=Path, nargs="+")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = args.study / "results"
    estimates = args.estimates or sorted((results / "inversions").glob("*/test.zarr"))
    document = measure(results / "datasets" / "test.zarr", estimates)
    for name, entry in document["targets"].items():
        cells = ", ".join(
            f"{method} {m['value']:.3g}{' ✓' if m['met'] else ''}"
            for method, m in entry["methods"].items()
        )
        print(f"{name} ({entry['target']}, {entry['n_samples']} rows): {cells}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    try:
        main()
    except UserError as error:  # a missing pack or store: one line, nothing written
        raise SystemExit(f"{Path(__file__).name}: error: {error}") from None
