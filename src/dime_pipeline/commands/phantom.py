"""``dime-pipeline phantom``: draw, mesh and write one phantom."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "phantom",
        help="generate one phantom (gmsh mesh + material and driver description)",
        description="Draw a random phantom of FAMILY from SEED and write DIR/mesh.msh (gmsh, "
        "region and boundary tags), DIR/phantom.json, DIR/modulus_field.npy (phantoms with a "
        "random modulus field) and DIR/preview.png (regions and |G*| in kPa). The same "
        "arguments give byte-identical mesh, JSON and field files.",
    )
    parser.add_argument(
        "family", metavar="FAMILY", help="phantom family: homogeneous, heterogeneous or liver"
    )
    parser.add_argument("--seed", type=int, required=True, help="the sample's seed (>= 0)")
    parser.add_argument(
        "--dim", type=int, choices=(2, 3), help="dimension (default: the config's dim)"
    )
    parser.add_argument("--config", type=Path, help="study config YAML (default: packaged)")
    parser.add_argument("--no-preview", action="store_true", help="skip DIR/preview.png")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.config import load_config
    from dime_pipeline.errors import UserError
    from dime_pipeline.phantoms import make_phantom
    from dime_pipeline.textio import check_outputs_spare_inputs

    check_outputs_spare_inputs([args.out], [args.config])
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0 (got {args.seed})")
    config = load_config(args.config)
    make_phantom(
        args.family, args.seed, config, args.out, dim=args.dim, preview=not args.no_preview
    )
