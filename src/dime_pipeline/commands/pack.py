"""``dime-pipeline pack``: acquired stores → train / val / test packed datasets."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pack",
        help="pack acquired stores into train/val/test datasets (split by sample)",
        description="Split acquired stores by simulated sample (all acquisitions of one family "
        "and seed stay together), stratified by family, deterministically from --seed, and write "
        "OUT_DIR/train.zarr, OUT_DIR/val.zarr and OUT_DIR/test.zarr (packed dataset schema).",
    )
    parser.add_argument("stores", type=Path, nargs="+", metavar="ACQUIRED.zarr")
    parser.add_argument("--out-dir", type=Path, required=True, metavar="DIR")
    parser.add_argument(
        "--fractions",
        type=float,
        nargs=3,
        default=[0.7, 0.15, 0.15],
        metavar=("TRAIN", "VAL", "TEST"),
        help="split fractions, >= 0, summing to 1 (default 0.7 0.15 0.15)",
    )
    parser.add_argument(
        "--seed", "--split-seed", dest="seed", type=int, required=True, help="split seed (>= 0)"
    )
    parser.add_argument(
        "--config-hash", help="config hash to record (default: the stores' common one)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.packing import SPLITS, pack_stores
    from dime_pipeline.textio import check_outputs_spare_inputs

    check_outputs_spare_inputs([args.out_dir / f"{split}.zarr" for split in SPLITS], args.stores)
    written = pack_stores(args.stores, args.out_dir, args.fractions, args.seed, args.config_hash)
    for split, paths in written.items():
        print(f"{args.out_dir / split}.zarr: {len(paths)} samples")
