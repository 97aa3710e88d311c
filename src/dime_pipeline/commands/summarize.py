"""``dime-pipeline summarize``: a JSON table of sample stores (the demo's first target)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summarize",
        help="tabulate sample stores into a JSON summary",
        description="Read sample stores and write one JSON row per store (family, seed, "
        "frequency, stiffness, wavelength in pixels, dofs, timings).",
    )
    parser.add_argument("stores", type=Path, nargs="+", metavar="SAMPLE.zarr")
    parser.add_argument("--out", type=Path, required=True, metavar="SUMMARY.json")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.summary import write_summary
    from dime_pipeline.textio import check_outputs_spare_inputs

    check_outputs_spare_inputs([args.out], args.stores)
    for row in write_summary(args.stores, args.out):
        print(
            f"{row['family']:>12} seed {row['seed']:>10}  {row['frequency_hz']:6.1f} Hz  "
            f"|G*| {row['median_abs_modulus_kpa']:6.2f} kPa  "
            f"λ_min {row['min_wavelength_px']:5.1f} px  dofs {sum(row['dofs'].values())}"
        )
