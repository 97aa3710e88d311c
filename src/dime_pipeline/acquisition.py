"""MRE acquisition model: what a phase-contrast MRE scanner does to a simulated first harmonic.

:func:`acquire` maps a sample on the simulation grid to the acquired grid. The result's
``displacement`` is the noise-free field after voxel averaging; ``measured`` is what the scanner
reports. Each effect is switchable and applied in this order (one random stream per call,
``seeding.generator(seed)``):

1. **Voxel averaging.** In plane, K×K simulation pixels form one acquired voxel (``average``).
   For 3D stores, ``slices`` contiguous axial slices of thickness ``slice_thickness_m`` (box
   profile; the stack centred in the volume; planes partly inside a slab weighted by their
   overlap) replace the z planes. Displacement and G* are averaged over the tissue pixels of the
   block (only tissue gives MR signal; linear averaging is the small intravoxel-phase limit of the
   complex signal sum). A voxel is in the mask when at least ``mask_fraction`` of its block is
   tissue (default 1: fully inside); its label is the majority region of its tissue pixels (ties:
   lowest id). Trailing rows/columns that fill no whole block are dropped, so acquired pixel
   (j, i) is still centred at ((i + ½)Δ, (j + ½)Δ) with Δ = KΔ_sim.
2. **Phase offsets.** Component c is encoded as N phase images φ_c(t_k) = Re{s U_c e^{iωt_k}},
   t_k = k/(N f), with motion-encoding factor s (rad/m): by default the peak |U_c| in the mask
   maps to ``peak_phase_rad`` (1 rad), or s = ``encoding_rad_per_m``. The first harmonic is
   U = 2/(N s) Σ_k φ_k e^{-2πik/N} (DFT bin 1), exact for N ≥ 3. ``offsets=0`` skips the images.
3. **Noise.** White Gaussian noise on every phase image (complex noise on U when offsets = 0).
   SNR is measured over the mask with all acquired components pooled:

   - ``amplitude``: RMS |U_c| / RMS |n_c|, n the noise of the recovered first harmonic;
   - ``strain`` (OSS-SNR): RMS γ_oct(U) / RMS γ_oct(n) over the mask eroded by one voxel along
     each differentiated axis, γ_oct the octahedral shear strain of central-difference strains.

   One realisation is drawn and scaled by a single factor so that the requested SNR holds on it
   exactly; both SNRs measured on the realised noise are recorded.
4. **Phase wrapping** (``wrap_rad`` = V): phase images are wrapped into (−V, V] before the DFT
   (V = π is a real scanner). Nothing here unwraps: inversions see wrapped data as corrupted.
5. **Mask.** ``displacement`` and ``measured`` are zero outside the mask.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from dime_pipeline.config import MAX_OFFSETS, MAX_SNR
from dime_pipeline.errors import UserError
from dime_pipeline.inversion import harmonic
from dime_pipeline.inversion.harmonic import MIN_OFFSETS
from dime_pipeline.seeding import generator
from dime_pipeline.store import Sample

log = logging.getLogger(__name__)

ACQUISITION_VERSION = 1
SNR_DEFINITIONS = ("amplitude", "strain")
AXIS_NAMES = ("z", "y", "x")
_TOLERANCE = 1e-9  # relative slack for tissue fractions and slab edges (float round-off)


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
    measured, facts = measure(grid, params, names, generator(seed))
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
            "simulation": {
                "shape": list(sample.modulus.shape),
                "voxel_size_m": [float(v) for v in sample.attrs["voxel_size_m"]],
                "components": list(_stored_names(sample)),
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


def _stored_names(sample: Sample) -> list[str]:
    default = ["x", "y", "z"][: len(sample.displacement)]
    return list(sample.attrs.get("components", default))


def _check_field(sample: Sample, names: tuple[str, ...]) -> None:
    """A simulated field is finite and moves the tissue; anything else is a corrupt store (NaN
    would spread through the averaging and the noise scale into every acquired voxel)."""
    for name in ("displacement", "modulus"):
        bad = int(np.count_nonzero(~np.isfinite(getattr(sample, name))))
        if bad:
            raise UserError(f"the {name} has {bad} non-finite (NaN/inf) values")
    stored = _stored_names(sample)
    field = sample.displacement[[stored.index(name) for name in names]]
    if not np.any(field[:, sample.mask]):
        raise UserError("the displacement is zero in the tissue mask: there is no wave to acquire")


def component_names(sample: Sample, wanted: str | None) -> tuple[str, ...]:
    """The acquired components, in the store's order."""
    stored = _stored_names(sample)
    if len(stored) != len(sample.displacement) or not set(stored) <= set("xyz"):
        raise UserError(f"store components {stored} are not named x, y, z")
    if wanted is None:
        return tuple(stored)
    missing = sorted(set(wanted) - set(stored))
    if missing:
        raise UserError(f"components {missing} are not in the store (it has {stored})")
    return tuple(name for name in stored if name in wanted)


# --- 1. voxel averaging -----------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A sample on the acquired grid (noise-free) plus facts about the resampling."""

    displacement: np.ndarray
    modulus: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    voxel_size_m: tuple[float, ...]
    facts: dict[str, Any]


def resample(sample: Sample, params: AcquisitionParams, names: tuple[str, ...]) -> Grid:
    """Voxel averaging (in plane and over slices) of the sample's selected components."""
    spatial = sample.modulus.shape
    voxel = tuple(float(v) for v in sample.attrs["voxel_size_m"])
    _check_geometry(spatial, voxel, params)
    operators = averaging_operators(spatial, voxel, params)
    tissue = sample.mask.astype(np.float64)
    volume = apply_operators(operators, np.ones(spatial))
    weight = apply_operators(operators, tissue)
    mask = (weight > 0) & (weight >= params.mask_fraction * volume * (1 - _TOLERANCE))
    if not mask.any():
        raise UserError("no acquired voxel lies in the tissue mask (try a smaller --average)")
    safe = np.where(mask, weight, 1.0)
    stored = _stored_names(sample)
    field = sample.displacement[[stored.index(name) for name in names]]
    displacement = apply_operators(operators, field * tissue) / safe * mask
    modulus = apply_operators(operators, sample.modulus * tissue) / safe * mask
    labels = _majority_labels(sample.labels, sample.mask, operators) * mask
    return Grid(
        displacement=displacement,
        modulus=modulus,
        mask=mask,
        labels=labels.astype(np.int16),
        voxel_size_m=_acquired_voxel(voxel, params),
        facts=_grid_facts(spatial, voxel, params),
    )


def _check_geometry(
    spatial: tuple[int, ...], voxel: tuple[float, ...], params: AcquisitionParams
) -> None:
    if len(voxel) != len(spatial):
        raise UserError(f"voxel_size_m {list(voxel)} does not match the grid shape {spatial}")
    if params.slices is not None and len(spatial) != 3:
        raise UserError("slices need a 3D store (axes z, y, x); this store is 2D")
    if params.average > min(spatial[-2:]):
        raise UserError(f"average {params.average} exceeds the in-plane grid {spatial[-2:]}")


def averaging_operators(
    spatial: tuple[int, ...], voxel: tuple[float, ...], params: AcquisitionParams
) -> list[np.ndarray | None]:
    """One weight matrix (acquired × simulated) per spatial axis; None where nothing changes."""
    operators: list[np.ndarray | None] = [None] * len(spatial)
    for axis in range(len(spatial) - 2, len(spatial)):
        if params.average > 1:
            operators[axis] = block_operator(spatial[axis], params.average)
    if params.slices is not None:
        operators[0] = slab_operator(spatial[0], voxel[0], params.slices, params.slice_thickness_m)
    return operators


def block_operator(n: int, block: int) -> np.ndarray:
    """Sum over consecutive blocks of ``block`` pixels; the trailing remainder is dropped."""
    rows = np.arange(n // block)
    operator = np.zeros((len(rows), n))
    for offset in range(block):
        operator[rows, rows * block + offset] = 1.0
    return operator


def slab_operator(n: int, spacing: float, slices: int, thickness: float) -> np.ndarray:
    """Box slice profile: overlap (in planes) of each slab with each simulated z plane."""
    planes = thickness / spacing
    start = (n - slices * planes) / 2
    if start < -_TOLERANCE:
        raise UserError(
            f"{slices} slices of {thickness * 1e3:g} mm exceed the volume depth "
            f"{n * spacing * 1e3:g} mm"
        )
    edges = np.array([_snap(start + s * planes) for s in range(slices + 1)])
    lower = np.maximum(edges[:-1, None], np.arange(n)[None, :])
    upper = np.minimum(edges[1:, None], np.arange(1, n + 1)[None, :])
    return np.clip(upper - lower, 0.0, None)


def _snap(value: float) -> float:
    """Round to a plane boundary when round-off is all that separates them."""
    nearest = round(value)
    return float(nearest) if abs(value - nearest) < _TOLERANCE else max(value, 0.0)


def apply_operators(operators: list[np.ndarray | None], array: np.ndarray) -> np.ndarray:
    """Apply the per-axis operators to the trailing spatial axes of ``array``."""
    first = array.ndim - len(operators)
    for index, operator in enumerate(operators):
        if operator is not None:
            axis = first + index
            array = np.moveaxis(np.tensordot(operator, array, axes=(1, axis)), 0, axis)
    return array


def _majority_labels(
    labels: np.ndarray, tissue: np.ndarray, operators: list[np.ndarray | None]
) -> np.ndarray:
    ids = np.unique(labels[tissue])
    if not len(ids):
        return np.zeros(apply_operators(operators, tissue.astype(float)).shape, dtype=np.int16)
    counts = np.stack(
        [apply_operators(operators, ((labels == i) & tissue).astype(float)) for i in ids]
    )
    return ids[np.argmax(counts, axis=0)]  # argmax takes the first (lowest id) on ties


def _acquired_voxel(voxel: tuple[float, ...], params: AcquisitionParams) -> tuple[float, ...]:
    sizes = list(voxel)
    for axis in range(len(sizes) - 2, len(sizes)):
        sizes[axis] = voxel[axis] * params.average
    if params.slices is not None:
        sizes[0] = float(params.slice_thickness_m)
    return tuple(sizes)


def _grid_facts(
    spatial: tuple[int, ...], voxel: tuple[float, ...], params: AcquisitionParams
) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "dropped_pixels": [n % params.average for n in spatial[-2:]],
        "mask_rule": f"tissue fraction of the block >= {params.mask_fraction}",
    }
    if params.slices is not None:
        depth = spatial[0] * voxel[0]
        stack = params.slices * params.slice_thickness_m
        first = (depth - stack) / 2 + params.slice_thickness_m / 2
        facts["slice_centres_m"] = [
            first + s * params.slice_thickness_m for s in range(params.slices)
        ]
    return facts


# --- 2-4. phase offsets, noise, wrapping --------------------------------------------------------


def phase_images(field: np.ndarray, encoding: float, offsets: int) -> np.ndarray:
    """φ(t_k) = Re{s U e^{2πik/N}}, stacked on a new leading axis k (radians)."""
    return harmonic.wave_images(field, offsets, axis=0, encoding=encoding)


def first_harmonic(images: np.ndarray, encoding: float) -> np.ndarray:
    """U = 2/(N s) Σ_k φ_k e^{-2πik/N}: DFT bin 1 over the leading axis, back in metres
    (:func:`dime_pipeline.inversion.harmonic.first_harmonic`)."""
    return harmonic.first_harmonic(images, axis=0, encoding=encoding)


def wrap_phase(images: np.ndarray, limit: float) -> np.ndarray:
    """Wrap into (−limit, limit]; values already inside are returned bit for bit."""
    inside = (images > -limit) & (images <= limit)
    wrapped = limit - np.mod(limit - images, 2 * limit)
    wrapped = np.where(wrapped <= -limit, wrapped + 2 * limit, wrapped)  # mod round-off at 2·limit
    return np.where(inside, images, wrapped)


def measure(
    grid: Grid, params: AcquisitionParams, names: tuple[str, ...], rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """The scanner's first harmonic of ``grid.displacement`` and facts about encoding and noise."""
    field, mask = grid.displacement, grid.mask
    peak = float(np.abs(field[:, mask]).max())
    encoding = _encoding(peak, params)
    facts: dict[str, Any] = {
        "encoding_rad_per_m": encoding,
        "achieved_peak_phase_rad": encoding * peak if params.offsets else None,
        "snr": None,
        "strain_snr": None,
        "noise_sigma_m": None,
        "noise_sigma_rad": None,
        "wrapped_fraction": None,
    }
    images = phase_images(field, encoding, params.offsets) if params.offsets else None
    measured = field.copy()
    if params.snr is not None:
        unit = _unit_noise(rng, field.shape, params.offsets)
        unit_harmonic = first_harmonic(unit, encoding) if params.offsets else unit
        scale = _noise_scale(field, unit_harmonic, grid, params, names)
        noise = scale * unit_harmonic
        facts |= _noise_facts(field, noise, grid, names, scale, params.offsets)
        if params.offsets:
            images = images + scale * unit
        else:
            measured = field + noise
    if images is not None:
        if params.wrap_rad is not None:
            wrapped = wrap_phase(images, params.wrap_rad)
            changed = (wrapped != images).any(axis=0)
            facts["wrapped_fraction"] = float(changed[:, mask].mean())
            images = wrapped
        measured = first_harmonic(images, encoding)
    return measured * mask, facts


def _encoding(peak: float, params: AcquisitionParams) -> float | None:
    if params.offsets == 0:
        return None
    if params.encoding_rad_per_m is not None:
        return params.encoding_rad_per_m
    if peak == 0:
        raise UserError("the displacement is zero in the mask: no motion encoding can be set")
    return params.peak_phase_rad / peak


def _unit_noise(rng: np.random.Generator, shape: tuple[int, ...], offsets: int) -> np.ndarray:
    """Unit white noise: real per phase image, or complex with E|n|² = 1 without offsets."""
    if offsets:
        return rng.standard_normal((offsets, *shape))
    draws = rng.standard_normal((2, *shape))
    return (draws[0] + 1j * draws[1]) / np.sqrt(2)


def _noise_scale(
    field: np.ndarray,
    unit_harmonic: np.ndarray,
    grid: Grid,
    params: AcquisitionParams,
    names: tuple[str, ...],
) -> float:
    """The factor that gives the realised noise exactly the requested SNR (SNR ∝ 1/scale)."""
    if params.snr_definition == "amplitude":
        achieved = amplitude_snr(field, unit_harmonic, grid.mask)
    else:
        achieved = strain_snr(field, unit_harmonic, grid.mask, grid.voxel_size_m, names)
        if achieved is None:
            raise UserError("the mask has no interior voxel: the strain SNR is undefined")
    if achieved == 0:
        raise UserError(f"the noise-free field has no {params.snr_definition} signal in the mask")
    return achieved / params.snr


def _noise_facts(
    field: np.ndarray,
    noise: np.ndarray,
    grid: Grid,
    names: tuple[str, ...],
    scale: float,
    offsets: int,
) -> dict[str, Any]:
    return {
        "snr": amplitude_snr(field, noise, grid.mask),
        "strain_snr": strain_snr(field, noise, grid.mask, grid.voxel_size_m, names),
        "noise_sigma_m": _rms(noise[:, grid.mask]),
        "noise_sigma_rad": scale if offsets else None,
    }


# --- SNR definitions --------------------------------------------------------------------------


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.abs(values) ** 2)))


def amplitude_snr(signal: np.ndarray, noise: np.ndarray, mask: np.ndarray) -> float:
    """RMS |U_c| over the mask and all components, over the RMS |n_c| of the noise there."""
    return _rms(signal[:, mask]) / _rms(noise[:, mask])


def strain_snr(
    signal: np.ndarray,
    noise: np.ndarray,
    mask: np.ndarray,
    voxel_size_m: tuple[float, ...],
    names: tuple[str, ...] = ("x", "y", "z"),
) -> float | None:
    """OSS-SNR: RMS γ_oct(U) / RMS γ_oct(n) over the eroded mask (None if that is empty)."""
    region = strain_region(mask)
    if not region.any():
        return None
    signal_strain = octahedral_shear_strain(signal, voxel_size_m, names)[region]
    noise_strain = octahedral_shear_strain(noise, voxel_size_m, names)[region]
    return _rms(signal_strain) / _rms(noise_strain)


def _differentiated_axes(shape: tuple[int, ...]) -> list[int]:
    """Axes with room for a central difference; thinner axes (single slices) count as flat."""
    return [axis for axis, n in enumerate(shape) if n >= 3]


def strain_region(mask: np.ndarray) -> np.ndarray:
    """Mask voxels whose central-difference neighbours are all in the mask."""
    structure = np.zeros((3,) * mask.ndim, dtype=bool)
    centre = (1,) * mask.ndim
    structure[centre] = True
    for axis in _differentiated_axes(mask.shape):
        for step in (0, 2):
            index = list(centre)
            index[axis] = step
            structure[tuple(index)] = True
    return ndimage.binary_erosion(mask, structure, border_value=0)


def octahedral_shear_strain(
    field: np.ndarray, voxel_size_m: tuple[float, ...], names: tuple[str, ...] = ("x", "y", "z")
) -> np.ndarray:
    """γ_oct = ⅔ √(Σ|ε_ii − ε_jj|² + 6 Σ|ε_ij|²) of complex central-difference strains.

    Components not in ``names`` and derivatives along axes thinner than 3 voxels count as zero
    (2D stores: ∂/∂z = 0).
    """
    spatial = field.shape[1:]
    axes = AXIS_NAMES[-len(spatial) :]
    gradient: dict[tuple[str, str], np.ndarray] = {}
    for component, name in enumerate(names):
        for axis in _differentiated_axes(spatial):
            step = voxel_size_m[axis]
            gradient[name, axes[axis]] = np.gradient(field[component], step, axis=axis)
    zero = np.zeros(spatial)

    def strain(i: str, j: str) -> np.ndarray:
        return 0.5 * (gradient.get((i, j), zero) + gradient.get((j, i), zero))

    normal = sum(abs(strain(i, i) - strain(j, j)) ** 2 for i, j in ("xy", "yz", "zx"))
    shear = sum(abs(strain(i, j)) ** 2 for i, j in ("xy", "yz", "zx"))
    return (2.0 / 3.0) * np.sqrt(normal + 6 * shear)
