"""``dime-pipeline calibrate``: calibrate a DIME model's confidence on a validation pack."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="calibrate a DIME model's confidence (temperature and band shape) on validation packs",
        description="Invert every sample of VAL with the DIME model, fit the temperature T and "
        "the Student-t degrees of freedom ν that make the predicted bands ln|G*| ± t_ν(p)·Tσ "
        "hold the truth at their nominal rates p (50, 68, 80, 90, 95 %), and write the model "
        "with them to --out (it may be --model; docs/dime.md). `train` does this itself on its "
        "validation packs.",
    )
    parser.add_argument("--model", type=Path, required=True, metavar="MODEL.pt")
    parser.add_argument("--val", type=Path, nargs="+", required=True, metavar="VAL.zarr")
    parser.add_argument("--out", type=Path, required=True, metavar="OUT.pt")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    import logging

    from dime_pipeline.dime.calibration import calibrate_model
    from dime_pipeline.textio import check_outputs_spare_inputs

    check_outputs_spare_inputs([args.out], list(args.val))
    record = calibrate_model(args.model, args.val, args.out)
    before, after = record["coverage_before"], record["coverage_after"]
    logging.getLogger(__name__).info(
        "wrote %s: T = %.3f, ν = %s; coverage at 68 %% / 95 %%: %.1f / %.1f %% before, "
        "%.1f / %.1f %% after (%d validation pixels)",
        args.out,
        record["log_std_scale"],
        record["band_dof"] or "∞",
        100 * before["0.68"],
        100 * before["0.95"],
        100 * after["0.68"],
        100 * after["0.95"],
        record["pixels"],
    )
