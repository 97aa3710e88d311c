"""Inversion (DIME, MMDI, DI) of every sample of a packed dataset into an estimates store.

Each row's ``measured`` field (the acquired first harmonic, all components; the method combines
them by joint least squares) is inverted with the row's own frequency, voxel size, density and
mask. The field is used as stored: packs are simulated, so unlike scanner exports
(``userdata.remove_channel_offsets``) they carry no per-channel intercept to remove.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from dime_pipeline.datasets import Pack
from dime_pipeline.errors import UserError
from dime_pipeline.estimates import Estimates, write_estimates
from dime_pipeline.inversion.methods import METHODS, Inverter, inverter
from dime_pipeline.inversion.result import InversionResult
from dime_pipeline.packing import PACK_PACKAGES
from dime_pipeline.progressbar import each
from dime_pipeline.provenance import package_versions
from dime_pipeline.textio import check_outputs_spare_inputs

log = logging.getLogger(__name__)


def is_pack(path: str | Path) -> bool:
    """True for a Zarr group whose attributes have a ``schema_version`` and a ``split``.

    A ``zarr.json`` that cannot be parsed is a UserError: whatever the store was meant to be,
    it is corrupt, and guessing "not a pack" would blame the output name instead.
    """
    metadata = Path(path) / "zarr.json"
    if not metadata.is_file():
        return False
    try:
        attrs = json.loads(metadata.read_text()).get("attributes", {})
    except (OSError, ValueError, AttributeError) as error:
        raise UserError(f"{path}: not a readable Zarr store ({metadata.name}: {error})") from None
    return isinstance(attrs, dict) and "schema_version" in attrs and "split" in attrs


def invert_pack(
    pack_path: str | Path,
    method: str,
    out_path: str | Path,
    parameters: Any = None,
    model: str | Path | None = None,
) -> Estimates:
    """Invert every row of the pack at ``pack_path`` with ``method`` (``methods.METHODS``) and
    write the estimates store ``out_path`` (``dime_pipeline.estimates``); return it.
    ``parameters`` are MMDI/DI parameters (defaults if None); ``model`` is the DIME model file
    (default: the shipped one)."""
    if method not in METHODS:
        raise UserError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    invert, description = inverter(method, model, parameters)
    pack = Pack(pack_path)
    check_outputs_spare_inputs([out_path], [pack_path, model])
    masks = pack.column("mask").astype(bool)
    modulus, confidence, seconds = invert_rows(pack, invert, method, masks)
    estimates = Estimates(
        modulus=modulus,
        confidence=confidence,
        mask=masks,
        seed=pack.column("seed"),
        attrs={
            "method": method,
            "parameters": description,
            "source": str(pack_path),
            "split": pack.attrs.get("split"),
            "config_hash": pack.attrs.get("config_hash"),
            "seconds": seconds,
            "versions": package_versions(*PACK_PACKAGES, "scipy"),
        },
    )
    try:
        write_estimates(out_path, estimates)
    except OSError as error:
        raise UserError(f"cannot write {out_path} ({error})") from None
    log.info("wrote %s: %d samples, %.2f s of inversion", out_path, len(pack), sum(seconds))
    return estimates


def invert_rows(
    pack: Pack, invert: Inverter, method: str, masks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """(modulus, confidence, seconds per row) of ``invert`` on every row of ``pack``: complex64
    and float32 arrays of the pack's sample shape, NaN where the method gave no estimate."""
    masks = pack.column("mask").astype(bool) if masks is None else masks
    modulus = np.full(masks.shape, np.nan + 1j * np.nan, np.complex64)
    confidence = np.full(masks.shape, np.nan, np.float32)
    seconds = []
    for row in each(range(len(pack)), f"{method} inversions"):
        start = time.perf_counter()
        try:
            result = invert(
                pack.row("measured", row),
                pack.row("voxel_size_m", row),
                float(pack.row("frequency_hz", row)),
                float(pack.row("density_kg_m3", row)),
                masks[row],
            )
        except ValueError as error:  # non-finite field, bad frequency or voxel size
            raise UserError(f"{pack.path}: sample {row}: {error}") from None
        seconds.append(time.perf_counter() - start)
        modulus[row][result.valid] = result.modulus[result.valid]
        confidence[row][result.valid] = result.confidence[result.valid]
        _log_row(row, len(pack), method, result, masks[row], seconds[-1])
    return modulus, confidence, seconds


def _log_row(
    row: int, n: int, method: str, result: InversionResult, mask: np.ndarray, seconds: float
) -> None:
    valid = result.valid
    median = float(np.median(result.magnitude[valid])) / 1e3 if valid.any() else float("nan")
    log.info(
        "sample %d/%d: %s median |G*| %.3g kPa, %.0f %% of the mask estimated, %.2f s",
        row + 1,
        n,
        method.upper(),
        median,
        100.0 * valid.sum() / max(int(mask.sum()), 1),
        seconds,
    )
