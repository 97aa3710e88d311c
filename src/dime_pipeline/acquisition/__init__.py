"""MRE acquisition model: what a phase-contrast MRE scanner does to a simulated first harmonic.

:func:`acquire` maps a sample on the simulation grid to the acquired grid. The result's
``displacement`` is the noise-free field after voxel averaging; ``measured`` is what the scanner
reports. Each effect is switchable and applied in this order (one random stream per call,
``seeding.generator(seed)``):

1. **Voxel averaging** (``averaging``). In plane, K×K simulation pixels form one acquired
   voxel (``average``). For 3D stores, ``slices`` contiguous axial slices of thickness
   ``slice_thickness_m`` (box profile; the stack centred in the volume; planes partly inside a
   slab weighted by their overlap) replace the z planes. Displacement and G* are averaged over
   the tissue pixels of the block (only tissue gives MR signal; linear averaging is the small
   intravoxel-phase limit of the complex signal sum). A voxel is in the mask when at least
   ``mask_fraction`` of its block is tissue (default 1: fully inside); its label is the
   majority region of its tissue pixels (ties: lowest id). Trailing rows/columns that fill no
   whole block are dropped, so acquired pixel (j, i) is still centred at ((i + ½)Δ, (j + ½)Δ)
   with Δ = KΔ_sim.
2. **Contamination** (``contamination``, off by default). Compressional plane waves and rigid
   bulk motion, as real scanners record beside the shear waves, are added to the first harmonic
   that is encoded, at relative RMS amplitudes ``compressional`` and ``bulk`` (of the shear
   field's RMS over the mask, all acquired components pooled), with random directions and
   phases from their own stream (so switching them on leaves the noise realisation alone).
   ``displacement`` stays the shear field; only ``measured`` carries them.
3. **Phase offsets** (``encoding``). Component c is encoded as N phase images
   φ_c(t_k) = Re{s U_c e^{iωt_k}}, t_k = k/(N f), with motion-encoding factor s (rad/m): by
   default the peak |U_c| in the mask (contamination included) maps to ``peak_phase_rad``
   (1 rad), or s = ``encoding_rad_per_m``. The first harmonic is U = 2/(N s) Σ_k φ_k e^{-2πik/N}
   (DFT bin 1), exact for N ≥ 3. ``offsets=0`` skips the images.
4. **Noise.** White Gaussian noise on every phase image (complex noise on U when offsets = 0).
   SNR is that of the shear field (``displacement``), measured over the mask with all acquired
   components pooled (``snr``):

   - ``amplitude``: RMS |U_c| / RMS |n_c|, n the noise of the recovered first harmonic;
   - ``strain`` (OSS-SNR): RMS γ_oct(U) / RMS γ_oct(n) over the mask eroded by one voxel along
     each differentiated axis, γ_oct the octahedral shear strain of central-difference strains.

   One realisation is drawn and scaled by a single factor so that the requested SNR holds on it
   exactly; both SNRs measured on the realised noise are recorded.
5. **Phase wrapping** (``wrap_rad`` = V): phase images are wrapped into (−V, V] before the DFT
   (V = π is a real scanner). Nothing here unwraps: inversions see wrapped data as corrupted.
6. **Mask.** ``displacement`` and ``measured`` are zero outside the mask.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from dime_pipeline.acquisition.averaging import resample, stored_names
from dime_pipeline.acquisition.contamination import contaminate
from dime_pipeline.acquisition.encoding import measure
from dime_pipeline.config import (
    DEFAULT_COMPRESSIONAL_SPEED_M_S,
    MAX_CONTAMINATION,
    MAX_OFFSETS,
    MAX_SNR,
)
from dime_pipeline.errors import UserError
from dime_pipeline.inversion.harmonic import MIN_OFFSETS
from dime_pipeline.seeding import generator
from dime_pipeline.store import Sample

log = logging.getLogger(__name__)

ACQUISITION_VERSION = 1
SNR_DEFINITIONS = ("amplitude", "strain")


@dataclass(frozen=True)
class AcquisitionParams:
    """Parameters of :func:`acquire`; the defaults give a noise-free 4-offset acquisition on the
    simulation grid.

    average: in-plane block edge K (simulation pixels per acquired voxel edge; 1 = none).
    mask_fraction: tissue fraction a block needs for its voxel to be in the mask (1 = all).
    slices, slice_thickness_m: 3D stores only; N contiguous axial slices of thickness T (m),
        centred in the volume (None = keep the z planes as they are).
    offsets: phase offsets N per period (0 = no phase images; noise is added to U directly).
    peak_phase_rad: encoding s such that the peak |U_c| in the mask becomes this phase.
    encoding_rad_per_m: explicit s in rad per metre of displacement; overrides peak_phase_rad.
    snr: requested SNR (None = noise-free) in the sense of ``snr_definition``.
    snr_definition: "amplitude" or "strain" (octahedral shear strain SNR).
    wrap_rad: wrap phase images into (−V, V] (None = no wrapping; needs offsets ≥ 3).
    components: displacement components to acquire, e.g. "xyz" or "z" (None = all stored).
    compressional, bulk: relative RMS amplitudes (of the shear field's) of compressional plane
        waves and rigid bulk motion added before encoding (0 = none; ``contamination``).
    compressional_speed_m_s: their speed (soft tissue: about 1540 m/s, wavelengths of metres).
    """

    average: int = 1
    mask_fraction: float = 1.0
    slices: int | None = None
    slice_thickness_m: float | None = None
    offsets: int = 4
    peak_phase_rad: float = 1.0
    encoding_rad_per_m: float | None = None
    snr: float | None = None
    snr_definition: Literal["amplitude", "strain"] = "amplitude"
    wrap_rad: float | None = None
    components: str | None = None
    compressional: float = 0.0
    bulk: float = 0.0
    compressional_speed_m_s: float = DEFAULT_COMPRESSIONAL_SPEED_M_S

    def __post_init__(self) -> None:
        checks = (
            (self.average >= 1, f"average must be >= 1 (got {self.average})"),
            (
                0 < self.mask_fraction <= 1,
                f"mask fraction must be in (0, 1] ({self.mask_fraction})",
            ),
            (
                (self.slices is None) == (self.slice_thickness_m is None),
                "slices and slice thickness must be given together",
            ),
            (self.slices is None or self.slices >= 1, f"slices must be >= 1 (got {self.slices})"),
            (_optional_positive(self.slice_thickness_m), "slice thickness must be > 0"),
            (
                self.offsets == 0 or MIN_OFFSETS <= self.offsets <= MAX_OFFSETS,
                f"offsets must be 0 (none) or {MIN_OFFSETS}-{MAX_OFFSETS} (got {self.offsets})",
            ),
            (_optional_positive(self.peak_phase_rad), "peak phase must be > 0"),
            (_optional_positive(self.encoding_rad_per_m), "motion encoding must be > 0"),
            (_optional_positive(self.snr), f"SNR must be > 0 and finite (got {self.snr})"),
            (
                self.snr is None or self.snr <= MAX_SNR,
                f"SNR {self.snr} is above {MAX_SNR:g}: that is noise-free (leave --snr out)",
            ),
            (
                self.snr_definition in SNR_DEFINITIONS,
                f"SNR definition must be one of {SNR_DEFINITIONS} (got {self.snr_definition!r})",
            ),
            (_optional_positive(self.wrap_rad), f"wrap limit must be > 0 (got {self.wrap_rad})"),
            (
                self.wrap_rad is None or self.offsets > 0,
                "phase wrapping needs phase images: offsets must be at least 3",
            ),
            (
                all(
                    math.isfinite(v) and 0 <= v <= MAX_CONTAMINATION
                    for v in (self.compressional, self.bulk)
                ),
                f"compressional and bulk amplitudes must be in [0, {MAX_CONTAMINATION:g}] "
                f"(got {self.compressional}, {self.bulk})",
            ),
            (
                _optional_positive(self.compressional_speed_m_s),
                f"compressional speed must be > 0 (got {self.compressional_speed_m_s})",
            ),
            (
                self.components is None
                or (
                    0 < len(self.components) == len(set(self.components))
                    and set(self.components) <= set("xyz")
                ),
                f"components must be distinct letters from 'xyz' (got {self.components!r})",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    def to_attrs(self) -> dict[str, Any]:
        return asdict(self)


def _optional_positive(value: float | None) -> bool:
    return value is None or (math.isfinite(value) and value > 0)


# --- the whole model ----------------------------------------------------------------------------


def acquire(sample: Sample, params: AcquisitionParams, seed: int) -> Sample:
    """The acquired sample: averaged noise-free ``displacement`` and scanner-like ``measured``."""
    if "acquisition" in sample.attrs:
        raise UserError("this store is already an acquisition; acquire a simulated store")
    if seed < 0:
        raise UserError(f"seed must be >= 0 (got {seed})")
    names = component_names(sample, params.components)
    _check_field(sample, names)
    grid = resample(sample, params, names)
    extra, contamination = contaminate(grid, params, names, seed, sample.attrs["frequency_hz"])
    measured, facts = measure(grid, params, names, generator(seed), extra)
    attrs = {
        **sample.attrs,
        "voxel_size_m": list(grid.voxel_size_m),
        "components": list(names),
        "acquisition": {
            "version": ACQUISITION_VERSION,
            "seed": seed,
            **params.to_attrs(),
            **grid.facts,
            **facts,
            "contamination": contamination,
            "simulation": {
                "shape": list(sample.modulus.shape),
                "voxel_size_m": [float(v) for v in sample.attrs["voxel_size_m"]],
                "components": list(stored_names(sample)),
            },
        },
    }
    log.info(
        "acquired grid %s, voxel %s mm, SNR %s, strain SNR %s",
        grid.modulus.shape,
        [round(v * 1e3, 4) for v in grid.voxel_size_m],
        facts["snr"],
        facts["strain_snr"],
    )
    return Sample(
        displacement=grid.displacement,
        modulus=grid.modulus,
        mask=grid.mask,
        labels=grid.labels,
        attrs=attrs,
        measured=measured,
    )


def _check_field(sample: Sample, names: tuple[str, ...]) -> None:
    """A simulated field is finite and moves the tissue; anything else is a corrupt store (NaN
    would spread through the averaging and the noise scale into every acquired voxel)."""
    for name in ("displacement", "modulus"):
        bad = int(np.count_nonzero(~np.isfinite(getattr(sample, name))))
        if bad:
            raise UserError(f"the {name} has {bad} non-finite (NaN/inf) values")
    stored = stored_names(sample)
    field = sample.displacement[[stored.index(name) for name in names]]
    if not np.any(field[:, sample.mask]):
        raise UserError("the displacement is zero in the tissue mask: there is no wave to acquire")


def component_names(sample: Sample, wanted: str | None) -> tuple[str, ...]:
    """The acquired components, in the store's order."""
    stored = stored_names(sample)
    if len(stored) != len(sample.displacement) or not set(stored) <= set("xyz"):
        raise UserError(f"store components {stored} are not named x, y, z")
    if wanted is None:
        return tuple(stored)
    missing = sorted(set(wanted) - set(stored))
    if missing:
        raise UserError(f"components {missing} are not in the store (it has {stored})")
    return tuple(name for name in stored if name in wanted)
