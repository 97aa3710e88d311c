"""``dime-pipeline invert``: shear modulus maps from a user's MRE wave field (MMDI or DI), or an
estimates store for every sample of a packed dataset."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line imports this module for --help: keep it light
    from dime_pipeline.inversion.methods import Inverter
    from dime_pipeline.inversion.result import InversionResult
    from dime_pipeline.userdata import UserVolume

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "invert",
        help="invert an MRE wave field (NIfTI, .npy, sample store or packed dataset) for G*",
        description=(
            "Invert the first-harmonic wave field in INPUT for the complex shear modulus and write "
            "a NIfTI whose 4th-axis volumes are |G*| (kPa), G' (kPa), G'' (kPa) and the fit "
            "confidence (0-1), on INPUT's grid and orientation with the voxel size used, and "
            "beside it a JSON summary (OUT with .json: ROI statistics, settings, warnings). An "
            "acquired sample store is inverted from its measured field. A packed dataset "
            "(train/val/test .zarr) is inverted sample by sample, each with its own frequency, "
            "voxel size, density and mask, into an estimates store (OUT ending in .zarr)."
        ),
    )
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="NIfTI (.nii, .nii.gz), complex .npy or MATLAB .mat (axes [component, z,] y, x), "
        "sample store or packed dataset",
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
        help="in-plane voxel size in mm (overrides the NIfTI header, and OUT says so; required "
        "for .npy and .mat)",
    )
    parser.add_argument(
        "--mat-variable",
        metavar="NAME",
        help="the variable of a MATLAB .mat INPUT to invert (required when it holds more than "
        "one numeric array)",
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
    parser.add_argument(
        "--png",
        metavar="PNG",
        help="also write a |G*| preview (kPa) as PNG: radiological orientation for NIfTI INPUT "
        "(image left = patient right), pixels below 95 %% confidence hatched",
    )
    parser.add_argument(
        "--vmax",
        type=float,
        metavar="KPA",
        help="top of the --png colour scale in kPa (default: the 99th percentile of |G*|); "
        "the same value for two methods makes their previews comparable",
    )
    parser.add_argument(
        "--confidence-mask",
        metavar="MASK",
        help="also write the 95 %% confidence mask (confidence >= 0.95 inside the mask) as a "
        "uint8 NIfTI (.nii or .nii.gz) on OUT's grid",
    )
    parser.add_argument(
        "--wave-maps",
        action="store_true",
        default=None,
        help="append two volumes to OUT: 4 shear-wave speed (m/s), 5 wavelength (pixels)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="OUT",
        help="output NIfTI (.nii or .nii.gz); an estimates store (.zarr) for a packed dataset",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline import userdata
    from dime_pipeline.errors import UserError
    from dime_pipeline.inversion.methods import inverter
    from dime_pipeline.inversion.packs import is_pack
    from dime_pipeline.textio import check_outputs_spare_inputs
    from dime_pipeline.userdata.checks import positive

    if args.model is not None and args.method != "dime":
        raise UserError("--model is for --method dime only")
    if is_pack(args.input):
        run_pack(args)
        return
    out = userdata.check_output_path(args.out, userdata.NIFTI_SUFFIXES)
    png = None if args.png is None else userdata.check_output_path(args.png, (".png",))
    confidence = args.confidence_mask
    if confidence is not None:
        confidence = userdata.check_output_path(confidence, userdata.NIFTI_SUFFIXES)
    if args.vmax is not None:
        if png is None:
            raise UserError("--vmax sets the colour scale of --png: give --png too")
        positive("--vmax", args.vmax)
    outputs = [out, userdata.summary_path(out), png, confidence]
    _check_distinct(outputs)
    check_outputs_spare_inputs(outputs, [args.input, args.mask, args.model])
    with userdata.collected_warnings() as warnings:
        volume = userdata.load_user_data(
            args.input,
            layout=args.layout,
            frequency_hz=args.frequency_hz,
            voxel_size_mm=args.voxel_size_mm,
            mask_path=args.mask,
            density_kg_m3=args.density_kg_m3,
            mat_variable=args.mat_variable,
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
        result = invert_by_slice(invert, volume)
        spans = userdata.check_wavelengths(
            volume.mask,
            result.magnitude,
            result.valid,
            volume.voxel_size_m,
            volume.frequency_hz,
            volume.density_kg_m3,
        )
    extras = userdata.Extras(
        input_path=str(args.input),
        confidence_mask=confidence,
        wave_maps=bool(args.wave_maps),
        vmax_kpa=args.vmax,
        warnings=tuple(warnings),
        wavelengths_across=spans,
    )
    userdata.write_outputs(out, png, volume, result, args.method, extras)
    _log_written(out, result)


def invert_by_slice(invert: Inverter, volume: UserVolume) -> InversionResult:
    """``invert`` a volume slice by slice with a progress line per slice (every tenth of the way
    beyond 10 slices; none under --quiet). Every method inverts z slices independently (in-plane
    Laplacian), so the maps equal those of one call on the whole volume."""
    import numpy as np

    from dime_pipeline.inversion.result import InversionResult
    from dime_pipeline.progressbar import each

    field, mask = volume.displacement, volume.mask
    arguments = (volume.voxel_size_m, volume.frequency_hz, volume.density_kg_m3)
    if mask.ndim == 2 or mask.shape[0] == 1:
        return invert(field, *arguments, mask)
    maps = {
        "modulus": np.zeros(mask.shape, complex),
        "confidence": np.zeros(mask.shape),
        "confidence_mask": np.zeros(mask.shape, bool),
        "valid": np.zeros(mask.shape, bool),
    }
    for z in each(range(mask.shape[0]), "inverting slices"):
        if not mask[z].any():
            continue  # no estimate anywhere, as every method gives an empty slice
        plane = invert(field[:, z], *arguments, mask[z])
        for name, values in maps.items():
            values[z] = getattr(plane, name)
    return InversionResult(density_kg_m3=float(volume.density_kg_m3), **maps)


def _check_distinct(outputs: list[Path | None]) -> None:
    """Two output options naming one file (also g.nii and g.nii.gz) would overwrite each other."""
    from dime_pipeline.errors import UserError

    seen: dict[str, Path] = {}
    for path in (Path(p) for p in outputs if p is not None):
        key = str(path.resolve()).removesuffix(".gz").removesuffix(".nii")
        if key in seen:
            raise UserError(f"{path}: the same output as {seen[key]}; give distinct names")
        seen[key] = path


def _log_written(out: Path, result: InversionResult) -> None:
    import numpy as np

    from dime_pipeline import userdata

    valid = result.valid
    confident = userdata.clinical_confidence_mask(result)
    log.info(
        "wrote %s and %s: median |G*| %.3g kPa over %d voxels, %.0f %% in the 95 %% confidence "
        "mask",
        out,
        userdata.summary_path(out).name,
        float(np.median(result.magnitude[valid])) / 1e3 if valid.any() else 0.0,
        int(valid.sum()),
        100.0 * confident.sum() / max(int(valid.sum()), 1),
    )


# Options that a packed dataset answers itself (per sample) or that have no meaning for it.
PACK_EXCLUDED = {
    "frequency_hz": "--frequency-hz",
    "voxel_size_mm": "--voxel-size-mm",
    "density_kg_m3": "--density-kg-m3",
    "mask": "--mask",
    "png": "--png",
    "vmax": "--vmax",
    "confidence_mask": "--confidence-mask",
    "wave_maps": "--wave-maps",
    "mat_variable": "--mat-variable",
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
