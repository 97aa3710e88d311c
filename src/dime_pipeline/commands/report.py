"""``dime-pipeline report``: the self-contained HTML results report."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="build the self-contained HTML report from the metrics and figures",
        description="Build one HTML file (figures embedded, no external resources; opens from "
        "disk) from the metrics and figures of `dime-pipeline evaluate`: summary per family and "
        "method, sections per family, noise and sweeps, DIME's confidence calibration, the "
        "wavelength sweep (if given), training curves (if the log exists), "
        "phantom previews, metric definitions, config and provenance.",
    )
    parser.add_argument("--metrics-dir", type=Path, required=True, metavar="DIR")
    parser.add_argument("--figures-dir", type=Path, required=True, metavar="DIR")
    parser.add_argument("--config", type=Path, metavar="YAML", help="resolved study config")
    parser.add_argument(
        "--training-log",
        type=Path,
        metavar="CSV",
        help="Lightning metrics.csv of the DIME training (section left out if missing)",
    )
    parser.add_argument(
        "--training-figure",
        type=Path,
        metavar="PNG",
        help="also write the training curves here (for snakemake --report)",
    )
    parser.add_argument(
        "--previews",
        type=Path,
        nargs="*",
        default=[],
        metavar="PNG",
        help="phantom preview images to include",
    )
    parser.add_argument(
        "--wavelength-sweep",
        type=Path,
        nargs=2,
        metavar=("JSON", "PNG"),
        help="the document and figure of `dime-pipeline wavelength-sweep` to include",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="HTML")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.evaluation.report import build_report
    from dime_pipeline.textio import check_outputs_spare_inputs

    sweep = args.wavelength_sweep or []
    inputs = [args.config, args.training_log, args.training_figure, *(args.previews or []), *sweep]
    check_outputs_spare_inputs([args.out], inputs)
    out = build_report(
        args.metrics_dir,
        args.figures_dir,
        args.out,
        config=args.config,
        training_log=args.training_log,
        previews=args.previews,
        training_figure=args.training_figure,
        wavelength_sweep=args.wavelength_sweep,
    )
    print(f"wrote {out}")
