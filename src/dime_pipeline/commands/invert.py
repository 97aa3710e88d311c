"""``dime-pipeline invert``: shear modulus maps from a user's MRE wave field (MMDI or DI), or an
estimates store for every sample of a packed dataset."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "invert",
        help="invert an MRE wave field (NIfTI, .npy, sample store or packed dataset) for G*",
        description=(
            "Invert the first-harmonic wave field in INPUT for the complex shear modulus and write "
            "a NIfTI whose 4th-axis volumes are |G*| (kPa), G' (kPa), G'' (kPa) and the fit "
            "confidence (0-1), on INPUT's grid and affine. An acquired sample store is inverted "
            "from its measured field. A packed dataset (train/val/test .zarr) is inverted sample "
            "by sample, each with its own frequency, voxel size, density and mask, into an "
            "estimates store (OUT ending in .zarr)."
        ),
    )
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="NIfTI (.nii, .nii.gz), complex .npy (axes [component, z,] y, x), sample store or "
        "packed dataset",
    )
    parser.add_argument(
        "--method",
        required=True,
        choices=("dime", "mmdi", "di"),  # inversion.methods.METHODS, kept import-free here
        help="inversion method",
    )
    parser.add_argument(
        "--model",
        metavar="MODEL.pt",
        help="DIME model file (default: $DIME_MODEL, else the pretrained model shipped with "
        "the package)",
    )
    parser.add_argument(
        "--frequency-hz",
        type=float,
        metavar="F",
        help="drive frequency in Hz (required unless INPUT is a sample store)",
    )
    parser.add_argument(
        "--voxel-size-mm",
        type=float,
        metavar="D",
        help="in-plane voxel size in mm (overrides the NIfTI header; required for .npy)",
    )
    parser.add_argument(
        "--layout",
        choices=("offsets", "complex"),
        default="offsets",
        help="NIfTI last axis: phase-offset wave images (offsets, default) or real, imaginary "
        "(complex)",
    )
    parser.add_argument(
        "--mask",
        metavar="MASK",
        help="tissue mask, NIfTI or .npy on INPUT's grid (default: where INPUT is nonzero)",
    )
    parser.add_argument(
        "--density-kg-m3",
        type=float,
        metavar="RHO",
        help="tissue density in kg/m³ (default 1000, or the sample store's)",
    )
    parser.add_argument("--png", metavar="PNG", help="also write a |G*| preview (kPa) as PNG")
    parser.add_argument(
        "--out",
        required=True,
        metavar="OUT",
        help="output NIfTI (.nii or .nii.gz); an estimates store (.zarr) for a packed dataset",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    import numpy as np

    from dime_pipeline import userdata
    from dime_pipeline.errors import UserError
    from dime_pipeline.inversion.methods import inverter
    from dime_pipeline.inversion.packs import is_pack
    from dime_pipeline.textio import check_outputs_spare_inputs

    if args.model is not None and args.method != "dime":
        raise UserError("--model is for --method dime only")
    if is_pack(args.input):
        run_pack(args)
        return
    out = userdata.check_output_path(args.out, userdata.NIFTI_SUFFIXES)
    png = None if args.png is None else userdata.check_output_path(args.png, (".png",))
    check_outputs_spare_inputs([out, png], [args.input, args.mask, args.model])
    volume = userdata.load_user_data(
        args.input,
        layout=args.layout,
        frequency_hz=args.frequency_hz,
        voxel_size_mm=args.voxel_size_mm,
        mask_path=args.mask,
        density_kg_m3=args.density_kg_m3,
    )
    log.info(
        "inverting %s with %s: field %s, %.4g Hz, voxel %.3g × %.3g mm, ρ = %g kg/m³",
        args.input,
        args.method.upper(),
        volume.displacement.shape,
        volume.frequency_hz,
        *(1e3 * s for s in volume.voxel_size_m),
        volume.density_kg_m3,
    )
    invert, _ = inverter(args.method, args.model)
    result = invert(
        volume.displacement,
        volume.voxel_size_m,
        volume.frequency_hz,
        volume.density_kg_m3,
        volume.mask,
    )
    userdata.write_outputs(out, png, volume, result, args.method)
    valid = result.valid
    log.info(
        "wrote %s: median |G*| %.3g kPa over %d voxels, %.0f %% in the 95 %% confidence mask",
        out,
        float(np.median(result.magnitude[valid])) / 1e3 if valid.any() else 0.0,
        int(valid.sum()),
        100.0 * result.confidence_mask.sum() / max(int(valid.sum()), 1),
    )


# Options that a packed dataset answers itself (per sample) or that have no meaning for it.
PACK_EXCLUDED = {
    "frequency_hz": "--frequency-hz",
    "voxel_size_mm": "--voxel-size-mm",
    "density_kg_m3": "--density-kg-m3",
    "mask": "--mask",
    "png": "--png",
}


def run_pack(args: argparse.Namespace) -> None:
    """INPUT is a packed dataset: write an estimates store (``dime_pipeline.estimates``)."""
    from dime_pipeline import userdata
    from dime_pipeline.errors import UserError
    from dime_pipeline.inversion.packs import invert_pack

    given = [flag for name, flag in PACK_EXCLUDED.items() if getattr(args, name) is not None]
    if given:
        raise UserError(
            f"{args.input}: a packed dataset carries each sample's frequency, voxel size, density "
            f"and mask; drop {', '.join(given)}"
        )
    out = userdata.check_output_path(args.out, (".zarr",))
    log.info("inverting every sample of the packed dataset %s with %s", args.input, args.method)
    invert_pack(args.input, args.method, out, model=args.model)
