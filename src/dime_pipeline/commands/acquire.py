"""``dime-pipeline acquire``: the MRE acquisition model applied to one sample store."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dime_pipeline.acquisition import AcquisitionParams


def _angle(text: str) -> float:
    """A float in radians; ``pi`` (or ``π``) is accepted for the scanner's wrap limit."""
    return math.pi if text.strip().lower() in ("pi", "π") else float(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "acquire",
        help="simulate the MRE acquisition of a sample store (averaging, offsets, noise, wrap)",
        description="Apply the MRE acquisition model to SAMPLE.zarr and write ACQUIRED.zarr: "
        "`displacement` is the noise-free field on the acquired grid, `measured` the first "
        "harmonic recovered from noisy (optionally wrapped) phase-offset images. Effects in "
        "order: voxel averaging, phase offsets, noise, wrapping, mask. Deterministic per --seed.",
    )
    parser.add_argument("store", type=Path, metavar="SAMPLE.zarr")
    parser.add_argument("--out", type=Path, required=True, metavar="ACQUIRED.zarr")
    parser.add_argument("--seed", type=int, required=True, help="seed of the noise (>= 0)")
    parser.add_argument(
        "--snr", type=float, help="amplitude SNR: RMS |U| / RMS |noise| in the mask (inf: none)"
    )
    parser.add_argument(
        "--strain-snr", type=float, help="octahedral shear strain SNR instead of --snr"
    )
    parser.add_argument(
        "--offsets", type=int, default=4, help="phase offsets per period, 0 or >= 3 (default 4)"
    )
    parser.add_argument(
        "--average", type=int, default=1, help="in-plane K×K block averaging (default 1: none)"
    )
    parser.add_argument(
        "--mask-fraction",
        type=float,
        default=1.0,
        help="tissue fraction a block needs to be in the mask (default 1: fully inside)",
    )
    parser.add_argument("--slices", type=int, help="3D stores: number of axial slices")
    parser.add_argument("--slice-thickness-mm", type=float, help="3D stores: slice thickness")
    parser.add_argument(
        "--wrap-rad",
        type=_angle,
        metavar="V",
        help="wrap phase images into (-V, V] before the DFT (`pi` for a scanner; default off)",
    )
    parser.add_argument(
        "--peak-phase-rad",
        type=float,
        default=1.0,
        help="motion encoding: peak |U| in the mask becomes this phase (default 1 rad)",
    )
    parser.add_argument(
        "--encoding-rad-per-um", type=float, help="explicit motion encoding instead (rad/µm)"
    )
    parser.add_argument(
        "--components", help="components to acquire, e.g. xyz or z (default: all stored)"
    )
    parser.add_argument(
        "--compressional",
        type=float,
        default=0.0,
        metavar="A",
        help="add compressional plane waves of RMS A × the shear field's (default 0: none)",
    )
    parser.add_argument(
        "--bulk",
        type=float,
        default=0.0,
        metavar="A",
        help="add rigid bulk motion of RMS A × the shear field's (default 0: none)",
    )
    parser.add_argument(
        "--compressional-speed",
        type=float,
        metavar="M_PER_S",
        help="speed of the compressional waves (default 1540, soft tissue)",
    )
    parser.set_defaults(handler=run)


def params_from_args(args: argparse.Namespace) -> AcquisitionParams:
    """The :class:`AcquisitionParams` of the command line (SI units inside)."""
    from dime_pipeline.acquisition import AcquisitionParams
    from dime_pipeline.errors import UserError

    if args.snr is not None and args.strain_snr is not None:
        raise UserError("give --snr or --strain-snr, not both")
    requested = args.snr if args.snr is not None else args.strain_snr
    if requested is not None and not requested > 0:
        raise UserError(f"SNR must be > 0 (got {requested})")
    thickness = args.slice_thickness_mm
    encoding = args.encoding_rad_per_um
    speed = args.compressional_speed
    return AcquisitionParams(
        average=args.average,
        mask_fraction=args.mask_fraction,
        slices=args.slices,
        slice_thickness_m=None if thickness is None else thickness * 1e-3,
        offsets=args.offsets,
        peak_phase_rad=args.peak_phase_rad,
        encoding_rad_per_m=None if encoding is None else encoding * 1e6,
        snr=None if requested is None or math.isinf(requested) else requested,
        snr_definition="strain" if args.strain_snr is not None else "amplitude",
        wrap_rad=args.wrap_rad,
        components=args.components,
        compressional=args.compressional,
        bulk=args.bulk,
        **({} if speed is None else {"compressional_speed_m_s": speed}),
    )


def params_to_argv(params: AcquisitionParams) -> list[str]:
    """The options that :func:`params_from_args` turns back into ``params`` (the workflow's
    `acquire` rule passes these, so a study's one-sample jobs and its shards, which call
    ``acquire`` directly, acquire alike). Floats are written with ``repr``: they read back
    exactly, save the mm and µm options' unit conversions."""
    snr_flag = "--strain-snr" if params.snr_definition == "strain" else "--snr"
    mm = None if params.slice_thickness_m is None else params.slice_thickness_m * 1e3
    per_um = None if params.encoding_rad_per_m is None else params.encoding_rad_per_m * 1e-6
    options = {
        "--average": params.average,
        "--mask-fraction": params.mask_fraction,
        "--slices": params.slices,
        "--slice-thickness-mm": mm,
        "--offsets": params.offsets,
        "--peak-phase-rad": params.peak_phase_rad,
        "--encoding-rad-per-um": per_um,
        snr_flag: params.snr,
        "--wrap-rad": params.wrap_rad,
        "--components": params.components,
        "--compressional": params.compressional,
        "--bulk": params.bulk,
        "--compressional-speed": params.compressional_speed_m_s,
    }
    return [
        word
        for flag, value in options.items()
        if value is not None
        for word in (flag, repr(value) if isinstance(value, float) else str(value))
    ]


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.acquisition import acquire
    from dime_pipeline.errors import UserError
    from dime_pipeline.store import read_sample, write_sample
    from dime_pipeline.textio import check_outputs_spare_inputs

    if args.seed < 0:
        raise UserError(f"--seed must be >= 0 (got {args.seed})")
    check_outputs_spare_inputs([args.out], [args.store])
    params = params_from_args(args)
    sample = read_sample(args.store)
    try:
        acquired = acquire(sample, params, args.seed)
    except UserError as error:  # what is wrong lies in this store: name it
        raise UserError(f"{args.store}: {error}") from None
    acquired.attrs["acquisition"]["source"] = str(args.store)
    write_sample(args.out, acquired)
    facts = acquired.attrs["acquisition"]
    snr = "noise-free" if facts["snr"] is None else f"SNR {facts['snr']:.3g}"
    strain = "" if facts["strain_snr"] is None else f", OSS-SNR {facts['strain_snr']:.3g}"
    print(f"{args.out}: grid {acquired.modulus.shape}, {snr}{strain}")
