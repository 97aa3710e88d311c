"""``dime-pipeline preview``: the preview figure of a phantom folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preview",
        help="draw a phantom's regions, drivers and |G*| as a PNG",
        description="Draw the phantom in DIR (written by `phantom` or `shard`): its regions with "
        "their outlines and names, its drivers, and |G*| in kPa on the voxel grid, as one PNG. "
        "The workflow draws only the phantoms its report shows.",
    )
    parser.add_argument("phantom", type=Path, metavar="DIR", help="a phantom folder")
    parser.add_argument("--out", type=Path, required=True, metavar="PNG", help="output image")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.phantoms.preview import write_preview
    from dime_pipeline.phantoms.spec import MESH_FILE, SPEC_FILE, read_spec
    from dime_pipeline.textio import atomic_file, check_outputs_spare_inputs

    # the image may go into the phantom's folder, never onto one of its files
    spec = read_spec(args.phantom)
    files = [args.phantom / MESH_FILE, args.phantom / SPEC_FILE]
    if spec.modulus_field is not None:
        files.append(args.phantom / spec.modulus_field.file)
    check_outputs_spare_inputs([args.out], files)
    with atomic_file(args.out) as tmp:
        write_preview(spec, args.phantom, tmp)
