"""``dime-pipeline evaluate``: score estimates stores against a packed test set."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score inversions (estimates stores) against the ground truth of a test pack",
        description="Compare the |G*| maps of one or more estimates stores (one per method, "
        "each inverted from TEST_PACK) with the pack's ground truth: per sample, per family, "
        "per noise level and along the frequency / voxel-size sweeps. Writes summary.json, "
        "groups.json, samples.json, sweeps.json and provenance.json to --out-dir and, with "
        "--figures-dir, the figures and their manifest.json for `dime-pipeline report`.",
    )
    parser.add_argument("--truth", type=Path, required=True, metavar="TEST_PACK.zarr")
    parser.add_argument(
        "--estimates",
        type=Path,
        nargs="+",
        required=True,
        metavar="EST.zarr",
        help="estimates stores, one per method",
    )
    parser.add_argument("--out-dir", type=Path, required=True, metavar="DIR", help="metrics JSON")
    parser.add_argument("--figures-dir", type=Path, metavar="DIR", help="also draw the figures")
    parser.add_argument(
        "--max-map-rows",
        type=int,
        default=4,
        metavar="N",
        help="samples per map figure (default 4)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.errors import UserError
    from dime_pipeline.evaluation.evaluate import (
        EvaluationParameters,
        evaluate,
        method_title,
        write_metrics,
    )
    from dime_pipeline.textio import check_outputs_spare_inputs

    if args.max_map_rows < 1:
        raise UserError(f"--max-map-rows must be >= 1 (got {args.max_map_rows})")
    inputs = [args.truth, *args.estimates]
    check_outputs_spare_inputs([args.out_dir, args.figures_dir], inputs, folders=True)
    parameters = EvaluationParameters(max_map_rows=args.max_map_rows)
    evaluation = evaluate(args.truth, args.estimates, parameters)
    write_metrics(evaluation, args.out_dir)
    if args.figures_dir is not None:
        from dime_pipeline.evaluation.figure_set import write_figures

        write_figures(evaluation, args.figures_dir)
    table = evaluation.documents["summary.json"]["table"]
    for family, methods in table.items():
        for method, group in methods.items():
            h = group["headline"]
            print(
                f"{family:>12} {method_title(method):>5}: MAPE {h['mape_pct']:6.1f} %  "
                f"bias {h['bias_pct']:+6.1f} %  r {h['pearson_r']:.3f}  "
                f"coverage {h['coverage_pct']:.0f} %"
            )
