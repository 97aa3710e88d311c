"""Typed configuration: the single source of truth for every parameter of a study.

``config/config.yaml`` is validated through :class:`PipelineConfig` before any job runs (the
Snakefile does it at parse time, the CLI when given ``--config``). Units are in the key names;
values are converted to SI where the library uses them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    Field,
    NonNegativeInt,
    PositiveFloat,
    ValidationError,
    model_validator,
)

from dime_pipeline.dime.settings import TrainingConfig
from dime_pipeline.errors import UserError, config_error, one_line
from dime_pipeline.strictness import STRICT

# The keys a phantom depends on: the workflow regenerates phantoms only when these change, not
# when, say, the acquisition or the training settings do.
PHANTOM_KEYS = (
    "seed",
    "dim",
    "frequency_hz",
    "grid",
    "materials",
    "domain",
    "driver",
    "boundary",
    "heterogeneous",
    "liver",
    "mesh",
)
FAMILIES = ("homogeneous", "heterogeneous", "liver")  # families with a working generator
# Keys added after studies were made with this package: left out of a config's digest while at
# their default (which changes nothing those studies computed), so their hashes, and the files
# that record them, stay the same.
LATER_KEYS = (
    ("driver", "count"),
    ("driver", "relative_amplitude"),
    ("driver", "whole_outline"),
    ("driver", "directions"),
    ("boundary",),
    ("acquisition", "compressional"),
    ("acquisition", "bulk"),
    ("acquisition", "compressional_speed_m_s"),
)
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


class _Strict(BaseModel):
    """The base of every config model: unknown keys are errors, and so are NaN and ±inf in any
    float (``.nan`` / ``.inf`` in YAML would pass every bound check and crash a job later; no
    key gives inf a meaning: "none" is null where a key allows it)."""

    model_config = STRICT


class _Ordered(_Strict):
    """Bounds ``min`` ≤ ``max`` (the subclasses declare their types)."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class Range(_Ordered):
    """A closed interval [min, max] from which a value is drawn uniformly per sample."""

    min: float
    max: float


class GridConfig(_Strict):
    """The voxel grid the wave field is sampled on, like an MRE magnitude image."""

    shape: tuple[int, int] = Field((64, 64), description="pixels (ny, nx)")
    voxel_size_mm: float = Field(1.5, gt=0.1, le=10.0, description="in-plane voxel edge, mm")
    voxel_size_range_mm: Range | None = Field(
        None,
        description="when set, each sample draws its voxel edge from this range (same shape, "
        "so the field of view varies): a voxel-size sweep within one study",
    )
    slices: int = Field(4, ge=1, le=256, description="3D: axial slices, centred on the organ")
    slice_thickness_mm: float = Field(5.0, gt=0, description="3D: slice thickness, mm")
    slice_spacing_mm: float = Field(5.0, gt=0, description="3D: centre-to-centre distance, mm")

    @model_validator(mode="after")
    def _shape_positive(self) -> Self:
        if min(self.shape) < 8:
            raise ValueError("shape: each axis needs at least 8 pixels")
        sizes = self.voxel_size_range_mm
        if sizes is not None and not (sizes.min > 0.1 and sizes.max <= 10.0):
            raise ValueError("voxel_size_range_mm: must lie in (0.1, 10] mm")
        return self

    @property
    def voxel_size_m(self) -> float:
        return self.voxel_size_mm * 1e-3

    @property
    def field_of_view_m(self) -> tuple[float, float]:
        return (self.shape[0] * self.voxel_size_m, self.shape[1] * self.voxel_size_m)

    @property
    def slice_thickness_m(self) -> float:
        return self.slice_thickness_mm * 1e-3

    @property
    def slice_spacing_m(self) -> float:
        return self.slice_spacing_mm * 1e-3


class MaterialConfig(_Strict):
    """Ranges of tissue properties drawn per sample, at ``reference_frequency_hz``."""

    storage_modulus_kpa: Range = Range(min=1.0, max=10.0)
    loss_ratio: Range = Field(Range(min=0.1, max=0.4), description="G''/G' (loss tangent)")
    density_kg_m3: float = Field(1000.0, gt=0)
    bulk_modulus_gpa: float = Field(2.2, gt=0, description="K, about 10^6 |G*| in soft tissue")
    frequency_model: Literal["constant", "kelvin_voigt", "springpot"] = "springpot"
    reference_frequency_hz: float = Field(60.0, gt=0, description="where the G' range applies")

    @model_validator(mode="after")
    def _positive(self) -> Self:
        if self.storage_modulus_kpa.min <= 0:
            raise ValueError("storage_modulus_kpa: min must be > 0")
        if self.loss_ratio.min < 0:
            raise ValueError("loss_ratio: min must be >= 0 (G'' >= 0)")
        return self


class DomainConfig(_Strict):
    """Size and shape of the rounded tissue domain, relative to the field of view."""

    radius_fraction: Range = Field(
        Range(min=0.32, max=0.46), description="mean radius / field-of-view edge"
    )
    roughness: float = Field(0.08, ge=0, le=0.2, description="relative amplitude of shape modes")


class IntRange(_Ordered):
    """A closed integer interval [min, max], drawn uniformly per sample."""

    min: NonNegativeInt
    max: NonNegativeInt


# Driver direction kinds (their meaning: phantoms.spec) and outer boundary kinds.
DIRECTION_KINDS = ("random", "normal", "tangential", "through_plane")
MAX_DRIVERS = 6  # drivers per phantom: more crowd the outline and slow the meshing
# A phantom's wave pattern, most specific first (their meaning: phantoms.spec.PhantomSpec.
# wave_pattern); stores and packs record them.
WAVE_PATTERNS = ("converging", "multi_driver", "reflecting", "absorbing")
BOUNDARY_KINDS = ("absorbing", "free", "mixed")


def _odds(value: dict[str, float], name: str) -> None:
    if any(odds < 0 for odds in value.values()) or not sum(value.values()) > 0:
        raise ValueError(f"{name}: odds must be >= 0 with a positive sum")


class DriverConfig(_Strict):
    """The drivers: prescribed harmonic displacements on patches of the outer boundary (arcs of
    the 2D outline, discs of the 3D surface). The first driver of every phantom is placed by its
    family (the liver's over the liver, anteriorly); the wave-field keys below add variety
    (``phantoms.waves``), all off by default so that default phantoms keep their bytes."""

    amplitude_um: float = Field(20.0, gt=0)
    arc_deg: Range = Range(min=30.0, max=90.0)
    count: IntRange = Field(
        IntRange(min=1, max=1), description="drivers per phantom (the extra ones anywhere)"
    )
    relative_amplitude: Range = Field(
        Range(min=0.5, max=1.0), description="extra drivers' amplitude / the first one's"
    )
    whole_outline: float = Field(
        0.0, ge=0, le=1, description="probability that one driver covers the whole outline"
    )
    directions: dict[Literal[DIRECTION_KINDS], float] = Field(
        default_factory=lambda: {"random": 1.0},
        description="odds of each direction kind (random, normal, tangential, through_plane)",
    )

    @model_validator(mode="after")
    def _valid(self) -> Self:
        if self.count.min < 1 or self.count.max > MAX_DRIVERS:
            raise ValueError(f"count: between 1 and {MAX_DRIVERS} drivers")
        if self.relative_amplitude.min <= 0 or self.arc_deg.min <= 0 or self.arc_deg.max >= 360:
            raise ValueError("relative_amplitude and arc_deg must be > 0 (arc_deg < 360)")
        _odds(self.directions, "directions")
        return self

    @property
    def varied(self) -> bool:
        """Whether any wave-field option is on (off: phantoms exactly as the first release)."""
        return self.count.max > 1 or self.whole_outline > 0 or set(self.directions) != {"random"}


class BoundaryConfig(_Strict):
    """The outer boundary outside the drivers: absorbing (an unbounded medium), traction-free
    (reflecting, as skin against air) or mixed (traction-free on ``free_arcs`` random arcs of
    ``free_arc_deg`` each, 3D: patches; absorbing elsewhere), drawn per phantom from the odds.
    The liver keeps its anatomical traction-free skin unless ``liver_odds`` say otherwise."""

    odds: dict[Literal[BOUNDARY_KINDS], float] = Field(
        default_factory=lambda: {"absorbing": 1.0},
        description="homogeneous and heterogeneous phantoms: odds of absorbing, free, mixed",
    )
    liver_odds: dict[Literal[BOUNDARY_KINDS], float] = Field(
        default_factory=lambda: {"free": 1.0}, description="the liver's odds (anatomy: free)"
    )
    free_arcs: IntRange = IntRange(min=1, max=2)
    free_arc_deg: Range = Range(min=45.0, max=120.0)

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _odds(self.odds, "odds")
        _odds(self.liver_odds, "liver_odds")
        if self.free_arcs.min < 1 or self.free_arc_deg.min <= 0 or self.free_arc_deg.max >= 360:
            raise ValueError("free_arcs >= 1 and 0 < free_arc_deg < 360")
        return self

    def family_odds(self, family: str) -> dict[str, float]:
        return self.liver_odds if family == "liver" else self.odds

    def varied(self, family: str) -> bool:
        default = "free" if family == "liver" else "absorbing"
        return {k for k, v in self.family_odds(family).items() if v > 0} != {default}


def _positive_range(value: Range, name: str) -> None:
    if value.min <= 0:
        raise ValueError(f"{name}: min must be > 0")


class HeterogeneousConfig(_Strict):
    """Background (drawn like a homogeneous phantom) with inclusions, or a random-field modulus.

    Inclusion G' = contrast x background G' (contrast log-uniform, so soft and stiff are equally
    likely); each inclusion draws its own loss ratio from ``materials.loss_ratio``.
    """

    inclusions: IntRange = Field(IntRange(min=1, max=6), description="inclusions per phantom")
    diameter_mm: Range = Field(
        Range(min=5.0, max=40.0), description="equivalent diameter (same area/volume disc/sphere)"
    )
    contrast: Range = Field(Range(min=0.3, max=5.0), description="G' / background G', log-uniform")
    shape_weights: dict[Literal["round", "elongated", "blob"], float] = Field(
        default_factory=lambda: {"round": 1.0, "elongated": 1.0, "blob": 1.0},
        description="relative odds: disc/sphere, ellipse/ellipsoid, smooth irregular blob",
    )
    aspect_ratio: Range = Field(Range(min=1.3, max=2.5), description="elongated: long/short axis")
    blob_roughness: float = Field(0.2, ge=0, le=0.35, description="blob shape-mode amplitude")
    margin_mm: float = Field(3.0, ge=0, description="gap between inclusions and to the boundary")
    random_field_probability: float = Field(
        0.25, ge=0, le=1, description="odds of the variant: no inclusions, random-field modulus"
    )
    random_field_sigma: float = Field(0.3, ge=0, le=2, description="multiplier exp(sigma g)")
    random_field_correlation_mm: float = Field(
        12.0, gt=0, description="g's Gaussian covariance exp(-r^2 / (2 l^2)), l in mm"
    )

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _positive_range(self.diameter_mm, "diameter_mm")
        _positive_range(self.contrast, "contrast")
        if self.aspect_ratio.min < 1:
            raise ValueError("aspect_ratio: min must be >= 1")
        if min(self.shape_weights.values(), default=0) < 0 or sum(self.shape_weights.values()) <= 0:
            raise ValueError("shape_weights: weights must be >= 0 with a positive sum")
        return self


Stage = Literal["F0", "F1", "F2", "F3", "F4"]


class TissueConfig(_Strict):
    """A tissue's |G*| (kPa) and loss ratio G''/G' at ``materials.reference_frequency_hz``."""

    modulus_kpa: Range
    loss_ratio: Range
    density_kg_m3: float = Field(1000.0, gt=0)

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _positive_range(self.modulus_kpa, "modulus_kpa")
        if self.loss_ratio.min < 0:
            raise ValueError("loss_ratio: min must be >= 0 (G'' >= 0)")
        return self


class BodyConfig(_Strict):
    """Axial body outline (superellipse), sizes of an adult abdomen; scaled to fit the FOV."""

    width_mm: Range = Field(Range(min=300.0, max=360.0), description="left-right, real anatomy")
    depth_mm: Range = Field(Range(min=210.0, max=260.0), description="anterior-posterior")
    squareness: Range = Field(Range(min=2.0, max=2.6), description="superellipse exponent")
    fov_fill: Range = Field(
        Range(min=0.8, max=0.92), description="body extent / FOV: sets the anatomy scale"
    )
    slab_margin_mm: float = Field(20.0, ge=0, description="3D: body above/below the liver")
    tissue: TissueConfig = TissueConfig(
        modulus_kpa=Range(min=1.0, max=3.0), loss_ratio=Range(min=0.1, max=0.4), density_kg_m3=1040
    )


class FatConfig(_Strict):
    thickness_mm: Range = Field(Range(min=10.0, max=30.0), description="subcutaneous fat")
    tissue: TissueConfig = TissueConfig(
        modulus_kpa=Range(min=1.0, max=3.0), loss_ratio=Range(min=0.1, max=0.4), density_kg_m3=950
    )


class SpleenConfig(_Strict):
    probability: float = Field(0.7, ge=0, le=1)
    length_mm: Range = Range(min=90.0, max=120.0)
    thickness_mm: Range = Range(min=30.0, max=45.0)
    height_mm: Range = Field(Range(min=70.0, max=100.0), description="3D: cranio-caudal")
    tissue: TissueConfig = TissueConfig(
        modulus_kpa=Range(min=3.0, max=6.0), loss_ratio=Range(min=0.1, max=0.4), density_kg_m3=1050
    )


class VesselConfig(_Strict):
    """Portal and hepatic veins: soft, lossy tubes kept inside the liver."""

    portal_count: IntRange = Field(
        IntRange(min=1, max=3), description="2D: in-plane branches; 3D: right/left (at most 2)"
    )
    hepatic_count: IntRange = Field(IntRange(min=2, max=3), description="right/middle/left")
    portal_radius_mm: Range = Range(min=4.0, max=7.0)
    hepatic_radius_mm: Range = Range(min=3.0, max=5.0)
    portal_length_mm: Range = Field(Range(min=30.0, max=60.0), description="2D in-plane segment")
    min_radius_voxels: float = Field(1.0, gt=0, description="floor after scaling, in voxels")
    tissue: TissueConfig = TissueConfig(
        modulus_kpa=Range(min=0.5, max=1.5), loss_ratio=Range(min=0.5, max=1.0), density_kg_m3=1060
    )

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _positive_range(self.portal_radius_mm, "portal_radius_mm")
        _positive_range(self.hepatic_radius_mm, "hepatic_radius_mm")
        return self


class LesionConfig(_Strict):
    probability: float = Field(0.3, ge=0, le=1, description="odds of focal lesions")
    count: IntRange = IntRange(min=1, max=3)
    diameter_mm: Range = Range(min=10.0, max=40.0)
    min_diameter_voxels: float = Field(3.0, gt=0, description="floor after scaling, in voxels")
    tissue: TissueConfig = TissueConfig(
        modulus_kpa=Range(min=5.0, max=12.0), loss_ratio=Range(min=0.1, max=0.4), density_kg_m3=1050
    )


class LiverDriverConfig(_Strict):
    """Passive driver on the anterior body wall, over the liver (as in clinical MRE)."""

    width_mm: Range = Field(Range(min=80.0, max=150.0), description="patch width (3D: diameter)")
    offset_deg: Range = Field(
        Range(min=0.0, max=30.0), description="from the anterior midline toward patient right"
    )


def _default_stage_moduli() -> dict[str, Range]:
    # docs/physics.md, |G*| at 60 Hz: F0 < 2.5, F1(-2) 2.9-3.5, F2(-3) 3.5-4, F3(-4) 4-5, F4 > 5.
    bounds = {"F0": (1.8, 2.5), "F1": (2.9, 3.5), "F2": (3.5, 4.0), "F3": (4.0, 5.0)}
    return {**{k: Range(min=a, max=b) for k, (a, b) in bounds.items()}, "F4": Range(min=5, max=8)}


class LiverConfig(_Strict):
    """Anatomy-informed liver phantoms; lengths in mm are adult anatomy, scaled to the FOV."""

    stage_probabilities: dict[Stage, float] = Field(
        default_factory=lambda: dict.fromkeys(("F0", "F1", "F2", "F3", "F4"), 0.2),
        description="fibrosis stage odds",
    )
    stage_modulus_kpa: dict[Stage, Range] = Field(
        default_factory=_default_stage_moduli, description="median liver |G*| per stage"
    )
    loss_ratio: Range = Range(min=0.1, max=0.4)
    density_kg_m3: float = Field(1050.0, gt=0)
    heterogeneity_sigma: float = Field(0.1, ge=0, le=1, description="0 = uniform liver")
    heterogeneity_correlation_mm: float = Field(10.0, gt=0, description="phantom mm (unscaled)")
    width_mm: Range = Field(Range(min=160.0, max=210.0), description="right lobe + left lobe")
    depth_mm: Range = Field(Range(min=120.0, max=170.0), description="anterior-posterior")
    height_mm: Range = Field(Range(min=140.0, max=180.0), description="3D: cranio-caudal")
    left_lobe_extent: Range = Field(Range(min=0.6, max=1.0), description="relative reach")
    left_lobe_thickness: Range = Field(Range(min=0.7, max=1.1), description="relative")
    wall_gap_mm: Range = Field(Range(min=5.0, max=15.0), description="liver to inner body wall")
    body: BodyConfig = BodyConfig()
    fat: FatConfig = FatConfig()
    spleen: SpleenConfig = SpleenConfig()
    vessels: VesselConfig = VesselConfig()
    lesions: LesionConfig = LesionConfig()
    driver: LiverDriverConfig = LiverDriverConfig()

    @model_validator(mode="after")
    def _valid(self) -> Self:
        odds = self.stage_probabilities
        if min(odds.values(), default=0) < 0 or sum(odds.values()) <= 0:
            raise ValueError("stage_probabilities: must be >= 0 with a positive sum")
        missing = [s for s, p in odds.items() if p > 0 and s not in self.stage_modulus_kpa]
        if missing:
            raise ValueError(f"stage_modulus_kpa: no range for stage {', '.join(missing)}")
        for stage, bounds in self.stage_modulus_kpa.items():
            _positive_range(bounds, f"stage_modulus_kpa.{stage}")
        return self


class MeshConfig(_Strict):
    elements_per_wavelength: float = Field(
        8.0, ge=3, description="P2 elements per shortest shear wavelength"
    )
    max_size_voxels: float = Field(
        2.0, gt=0, description="element size cap, in voxels, so geometry is resolved"
    )


# Acquisition bounds shared by the config and `dime-pipeline acquire`: scanners record 3-8 phase
# offsets (64 leaves room; 10⁹ filled memory); above SNR 10⁶ the noise is below float32
# round-off (1e308 divided by zero), so such a level is the noise-free one (null).
MAX_OFFSETS = 64
MAX_SNR = 1e6
MAX_CONTAMINATION = 100.0  # relative amplitude: beyond it the shear field is lost in rounding
DEFAULT_COMPRESSIONAL_SPEED_M_S = 1540.0  # soft tissue, as water


class AcquisitionConfig(_Strict):
    """The MRE acquisition model applied to every sample (see ``dime_pipeline.acquisition``)."""

    snr: list[PositiveFloat | None] = Field(
        default_factory=lambda: [None, 10.0],
        description="noise levels, one acquired store per sample and level; null = noise-free",
    )
    snr_definition: Literal["amplitude", "strain"] = "amplitude"
    offsets: int = Field(4, description="phase offsets per period: 0 (none) or >= 3")
    average: int = Field(1, ge=1, description="in-plane KxK block averaging")
    mask_fraction: float = Field(1.0, gt=0, le=1, description="tissue share of a voxel's block")
    peak_phase_rad: float = Field(1.0, gt=0, description="peak |U| in the mask -> this phase")
    wrap_rad: float | None = Field(None, gt=0, description="wrap phase images into (-V, V]")
    components: str = Field("xyz", description="acquired components, distinct letters of xyz")
    compressional: float = Field(
        0.0,
        ge=0,
        le=MAX_CONTAMINATION,
        description="compressional plane waves' RMS relative to the shear field's (0 = none)",
    )
    bulk: float = Field(
        0.0, ge=0, le=MAX_CONTAMINATION, description="rigid bulk motion's relative RMS (0 = none)"
    )
    compressional_speed_m_s: float = Field(
        DEFAULT_COMPRESSIONAL_SPEED_M_S, gt=0, description="speed of the compressional waves"
    )

    @model_validator(mode="after")
    def _offsets(self) -> Self:
        if self.offsets in (1, 2) or not 0 <= self.offsets <= MAX_OFFSETS:
            raise ValueError(f"offsets must be 0 (no phase images) or 3-{MAX_OFFSETS}")
        if any(level is not None and level > MAX_SNR for level in self.snr):
            raise ValueError(f"snr: levels above {MAX_SNR:g} are noise-free, write null")
        if self.wrap_rad is not None and self.offsets == 0:
            raise ValueError("wrap_rad needs phase images (offsets >= 3)")
        if (
            not self.components
            or set(self.components) - set("xyz")
            or len(set(self.components)) != len(self.components)
        ):
            raise ValueError("components must be distinct letters of 'xyz'")
        if not self.snr:
            raise ValueError("snr: give at least one level (null = noise-free)")
        return self


class SplitFractions(_Strict):
    train: float = Field(0.5, ge=0)
    val: float = Field(0.25, ge=0)
    test: float = Field(0.25, ge=0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> Self:
        if abs(self.train + self.val + self.test - 1.0) > 1e-9:
            raise ValueError("train + val + test must sum to 1")
        return self


class DatasetsConfig(_Strict):
    fractions: SplitFractions = SplitFractions()
    split_seed: int = Field(0, ge=0, description="seed of the by-sample train/val/test split")


class SolverConfig(_Strict):
    ranks: int = Field(1, ge=1, description="MPI ranks per simulate job")
    kind: Literal["direct", "iterative"] = Field("direct", description="MUMPS LU or GMRES")
    max_iterations: int = Field(500, ge=1, description="iterative solver: GMRES iterations")
    jit_cache: str = Field(".cache/fenics", description="FFCx JIT cache folder")


class DimeConfig(_Strict):
    """DIME in the workflow: which model inverts the test set, and how the workflow trains one.

    ``model: shipped`` uses the pretrained model that ships with the package (no training);
    ``trained`` trains on this study's train/val packs (rule ``train``) and uses that model.
    ``training`` is the very model of ``dime-pipeline train --config`` (``dime.settings``):
    the workflow writes it to ``results/dime/training.yaml`` and passes that file.
    """

    model: Literal["shipped", "trained"] = "shipped"
    training: TrainingConfig = Field(
        default_factory=lambda: TrainingConfig(),
        description="training settings: network, data, optim, trainer (docs/dime.md)",
    )


# Samples per shard job (benchmarks/bench_workflow.py: see docs/performance.md).
DEFAULT_SHARD_SIZE = 8


class WorkflowConfig(_Strict):
    """How the workflow schedules the work: no result depends on it (the config hash leaves it
    out, so stores are byte-identical whatever it says)."""

    shard_size: int = Field(
        DEFAULT_SHARD_SIZE,
        ge=1,
        description="samples per job from phantom to acquired stores (1: a job per stage and "
        "sample)",
    )


class PipelineConfig(_Strict):
    """A whole study. Every key has a default; the YAML overrides what it names."""

    seed: int = Field(2025, ge=0, description="root of every random stream")
    samples: dict[Literal["homogeneous", "heterogeneous", "liver"], NonNegativeInt] = Field(
        default_factory=lambda: {"homogeneous": 4}, description="samples per phantom family"
    )
    dim: Literal[2, 3] = 2
    frequency_hz: Range = Range(min=50.0, max=70.0)
    grid: GridConfig = GridConfig()
    materials: MaterialConfig = MaterialConfig()
    domain: DomainConfig = DomainConfig()
    driver: DriverConfig = DriverConfig()
    boundary: BoundaryConfig = BoundaryConfig()
    heterogeneous: HeterogeneousConfig = HeterogeneousConfig()
    liver: LiverConfig = LiverConfig()
    mesh: MeshConfig = MeshConfig()
    solver: SolverConfig = SolverConfig()
    acquisition: AcquisitionConfig = AcquisitionConfig()
    datasets: DatasetsConfig = DatasetsConfig()
    dime: DimeConfig = Field(default_factory=lambda: DimeConfig())
    workflow: WorkflowConfig = WorkflowConfig()

    @model_validator(mode="after")
    def _positive_frequency(self) -> Self:
        if self.frequency_hz.min <= 0:
            raise ValueError("frequency_hz: min must be > 0")
        return self

    def digest(self, keys: Sequence[str] | None = None) -> str:
        """A short hash of the canonical JSON of this config (the store's ``config_hash``), or
        of the top-level ``keys`` only."""
        values = self.model_dump(mode="json", exclude={"workflow"})
        defaults = PipelineConfig().model_dump(mode="json")
        for path in LATER_KEYS:  # at their defaults they change nothing: studies keep their hash
            *parents, last = path
            here, default = values, defaults
            for key in parents:
                here, default = here[key], default[key]
            if here[last] == default[last]:
                del here[last]
        if keys is not None:  # a later key left out above stays out
            values = {key: values[key] for key in keys if key in values}
        canonical = json.dumps(values, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def data_digest(self) -> str:
        """The hash of the keys the simulated samples depend on (all but ``NOT_DATA_KEYS``), the
        pack's ``config_hash``: changing DIME's training settings re-packs nothing."""
        return self.digest([key for key in type(self).model_fields if key not in NOT_DATA_KEYS])


NOT_DATA_KEYS = ("dime", "workflow")  # settings no simulated sample depends on


def validate_config(raw: dict[str, Any], what: str = "config") -> PipelineConfig:
    """Validate a config mapping, raising :class:`UserError` with one line naming the key; a
    study too big for this machine's memory (:func:`check_resources`) is refused too."""
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as error:
        raise config_error(error, what) from None
    check_resources(config, what)
    return config


# --- what a study costs, estimated before any job runs --------------------------------------
#
# Measured on the 2-core, 23 GiB development machine: peak RSS from `/usr/bin/time -v
# dime-pipeline phantom|simulate` (one rank, homogeneous phantoms of one seed, G' 9.6 kPa, so
# h = 3 mm = 2 voxels of 1.5 mm), cells from the stores' `solver.cells`:
#   2D simulate, direct (MUMPS), P2 plane strain + antiplane:
#     64x64 grid, 1 593 cells: 168 MB, 2.5 s;  256x256, 24 786 cells: 675 MB, 3.8 s;
#     512x512, 98 194 cells: 2 124 MB, 18.6 s  -> 19.1-20.8 kB per cell, linear;
#     512x512 pixels of 0.19 mm over the 64x64 grid's mesh: 321 MB -> 608 B per pixel.
#   3D simulate, P2 elasticity, 32x32x4 grid (8 381 cells) and 48x48x4 (26 187 cells):
#     direct: 1 073 MB and 3 860 MB (2 min 25 s): 108 -> 141 kB per cell, growing as
#     cells^(4/3) (LU fill-in; docs/performance.md extrapolates 2 M dofs to ~150 GB);
#     iterative: 26 187 cells 1 086 MB (1 min 15 s) -> 35 kB per cell, linear (performance.md:
#     42 kB per cell for a 466 887-cell liver, FGMRES(100), 2 ranks).
#   phantom (gmsh) needs far less than the solve (98 194 cells: 231 MB).
#   cells x h^dim / (field of view area [x z extent in 3D]): 1.50-1.56 in 2D, 1.89-2.05 in 3D.
# The solve estimate uses the lower of these numbers and the cheaper (iterative) 3D solver, so a
# refused study cannot run with either solver; an accepted 3D study may still need
# `solver.kind: iterative` to fit.
#   `snakemake -n --quiet` of a 32x32 study with 2 noise levels: 500 samples 168 MB (3 s),
#   2 000 samples 275 MB (8 s), 8 000 samples 706 MB (51 s; without --quiet the same) -> 72 kB
#   per sample, i.e. about 18 kB per job (phantom, simulate, one acquire per noise level).
BASE_BYTES = 150e6  # a Python process with numpy, zarr, dolfinx loaded (per MPI rank)
PIXEL_BYTES = 600.0
CELL_BYTES = {2: 19e3, 3: 35e3}
CELLS_PER_H_CUBE = {2: 1.5, 3: 1.9}
PLAN_BASE_BYTES = 130e6
PLAN_JOB_BYTES = 18e3
RANDOM_FIELD_MIN_SIGMAS = 3.5  # a standardised random field rarely dips below -3.5
MEMORY_ENV = "DIME_MEMORY_GB"  # the memory of the machines that run the jobs, when not this one


def memory_bytes() -> float:
    """The memory a job may use: this machine's physical memory, or ``$DIME_MEMORY_GB`` (the
    compute nodes' memory, when the workflow is planned on a smaller login node)."""
    given = os.environ.get(MEMORY_ENV)
    if given:
        try:
            value = float(given)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"${MEMORY_ENV} must be a number of GB > 0 (got {given!r})")
        return value * 1e9
    return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def _families(config: PipelineConfig) -> list[str]:
    """The families the study draws (all of them for a study of no samples)."""
    return [family for family, count in config.samples.items() if count > 0] or list(FAMILIES)


def _bulk_wave(config: PipelineConfig, family: str) -> tuple[float, float]:
    """(smallest |G*| in Pa at the reference frequency, largest density) of the family's bulk
    tissue: the background's G' range; for the liver, the body wall, fat and the liver over the
    stages drawn. Softer inclusions, vessels and random-field dips make some samples finer still
    (not counted: the estimate is a floor, so that what it refuses cannot run)."""
    if family == "liver":
        liver = config.liver
        stages = [s for s, p in liver.stage_probabilities.items() if p > 0]
        moduli = [liver.stage_modulus_kpa[stage].min for stage in stages]
        tissues = (liver.body.tissue, liver.fat.tissue)
        moduli += [tissue.modulus_kpa.min for tissue in tissues]
        densities = [liver.density_kg_m3, *(tissue.density_kg_m3 for tissue in tissues)]
        return 1e3 * min(moduli), max(densities)
    return 1e3 * config.materials.storage_modulus_kpa.min, config.materials.density_kg_m3


def _domain_depth(config: PipelineConfig, family: str, voxel: float) -> float:
    """3D: the largest z extent of the family's domain (as the phantom modules draw it)."""
    grid = config.grid
    slab = 0.5 * ((grid.slices - 1) * grid.slice_spacing_m + grid.slice_thickness_m)
    edge = min(grid.shape) * voxel
    if family == "liver":  # a slab of the body around the liver (liver.anatomy.draw_body_and_liver)
        body = config.liver.body
        scale = body.fov_fill.max * edge / min(body.width_mm.min, body.depth_mm.min) * 1e3
        margin = max(1e-3 * scale * body.slab_margin_mm, 2 * voxel)
        reach = 0.5e-3 * scale * config.liver.height_mm.max + margin
        return 2 * max(reach, slab + voxel)
    radius = edge * config.domain.radius_fraction.max * (1 + config.domain.roughness)
    return 2 * max(radius, slab + 2 * voxel)  # an ellipsoid (common.draw_ellipsoid)


def mesh_estimate(config: PipelineConfig) -> tuple[float, float, bool]:
    """(cells, mesh size h in m, whether the wavelength sets h) of the finest mesh of the
    study's bulk tissue, set as ``phantoms.common.mesh_size`` sets it: h = min(shortest
    shear wavelength / elements_per_wavelength, max_size_voxels voxels), the wavelength
    sqrt(|G*| / density) / the highest frequency, cells = CELLS_PER_H_CUBE x the field of view's
    area (3D: times the domain's depth) / h^dim. The largest over the families drawn."""
    grid, frequency = config.grid, config.frequency_hz.max
    voxel = 1e-3 * (grid.voxel_size_range_mm or Range(min=0, max=grid.voxel_size_mm)).max
    worst = (0.0, math.inf, False)
    for family in _families(config):
        modulus, density = _bulk_wave(config, family)
        if config.materials.frequency_model != "constant":  # |G*| falls below f_ref, at most ∝ f
            modulus *= min(1.0, frequency / config.materials.reference_frequency_hz)
        wavelength = math.sqrt(modulus / density) / frequency  # <= the true 2π / Re(k)
        by_wave = wavelength / config.mesh.elements_per_wavelength
        size = min(by_wave, config.mesh.max_size_voxels * voxel)
        domain = grid.shape[0] * grid.shape[1] * voxel**2
        if config.dim == 3:
            domain *= _domain_depth(config, family, voxel)
        cells = CELLS_PER_H_CUBE[config.dim] * domain / size**config.dim
        worst = max(worst, (cells, size, by_wave <= size))
    return worst


def _solve_bytes(config: PipelineConfig, pixels: int) -> float:
    """The estimated peak memory of one solve of the study's finest mesh (all ranks)."""
    cells = mesh_estimate(config)[0]
    return config.solver.ranks * BASE_BYTES + pixels * PIXEL_BYTES + cells * CELL_BYTES[config.dim]


def check_resources(config: PipelineConfig, what: str = "config") -> None:
    """Refuse, naming the key, a study whose solve or whose workflow plan cannot fit in memory
    (:func:`memory_bytes`): estimated before the work, so nothing hangs or is half-written."""
    memory = memory_bytes()
    have = f"this machine's {memory / 1e9:.3g} GB of memory"
    if MEMORY_ENV in os.environ:
        have = f"the {memory / 1e9:.3g} GB of ${MEMORY_ENV}"
    pixels = math.prod(config.grid.shape) * (config.grid.slices if config.dim == 3 else 1)
    cells, size, by_wave = mesh_estimate(config)
    need = _solve_bytes(config, pixels)
    if need > memory:
        # The key to blame: the mesh's, when the default mesh settings would fit.
        default_mesh = config.model_copy(update={"mesh": MeshConfig()})
        key = "grid.shape"
        if _solve_bytes(default_mesh, pixels) <= memory:
            key = "mesh.elements_per_wavelength" if by_wave else "mesh.max_size_voxels"
        raise UserError(
            f"{what} key '{key}': one solve needs about {need / 1e9:.3g} GB ({pixels:.3g} "
            f"pixels, about {cells:.3g} mesh cells of {size * 1e3:.3g} mm), more than {have}; "
            "use a smaller grid.shape or mesh.elements_per_wavelength, or a larger "
            "mesh.max_size_voxels"
        )
    samples = sum(config.samples.values())
    per_sample = PLAN_JOB_BYTES * (2 + len(config.acquisition.snr))
    if PLAN_BASE_BYTES + samples * per_sample > memory:
        fit = max(0, int((memory - PLAN_BASE_BYTES) / per_sample))
        raise UserError(
            f"{what} key 'samples': planning {samples} samples needs about "
            f"{(PLAN_BASE_BYTES + samples * per_sample) / 1e9:.3g} GB (Snakemake's job graph), "
            f"more than {have}; at most {fit} samples fit"
        )


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """Read and validate a YAML config file (the packaged default when ``path`` is None)."""
    path = path or DEFAULT_CONFIG
    return validate_config(read_yaml_mapping(path, "config"), f"config {path}")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (plain YAML keeps the
    last one silently, so a second ``frequency_hz:`` far down a file would win unnoticed).

    The error names the key's dotted path and marks the second occurrence. Keys brought in by a
    merge (``<<: *defaults``) may still be overridden: only keys written in the mapping count.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        self._check_unique(node, (), set())
        return super().construct_document(node)

    def _check_unique(self, node: yaml.Node, where: tuple[str, ...], seen: set[int]) -> None:
        if id(node) in seen:  # an alias: checked where its anchor is (and no endless recursion)
            return
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._check_unique(item, (*where, str(index)), seen)
        elif isinstance(node, yaml.MappingNode):
            keys: set[Any] = set()
            for key_node, value_node in node.value:
                key = self._key(key_node)
                path = (*where, str(key))
                if key is not None:
                    if key in keys:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key '{'.'.join(path)}'", key_node.start_mark
                        )
                    keys.add(key)
                self._check_unique(value_node, path, seen)

    def _key(self, node: yaml.Node) -> Any:
        """A scalar key's value (None for other keys: the constructor judges those)."""
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:merge":
            return None
        key = self.construct_object(node, deep=True)
        try:
            hash(key)
        except TypeError:
            return None
        return key


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file (empty file: {}); UserError naming ``what`` and,
    for a syntax error, the problem and where it is."""
    try:
        raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=UniqueKeyLoader) or {}
    except OSError as error:
        raise UserError(f"cannot read {what} {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not UTF-8 text (is it a YAML file?)") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = error.problem or error.context or "syntax error"
        raise UserError(f"{what} {path} is not valid YAML: {problem}{where}") from None
    except yaml.YAMLError as error:
        raise UserError(f"{what} {path} is not valid YAML: {one_line(error)}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{what} {path}: top level must be a mapping of keys")
    return raw


def dump_config(config: PipelineConfig) -> str:
    """The YAML text of a validated config, every key spelled out."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
