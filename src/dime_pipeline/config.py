"""Typed configuration: the single source of truth for every parameter of a study.

``config/config.yaml`` is validated through :class:`PipelineConfig` before any job runs (the
Snakefile does it at parse time, the CLI when given ``--config``). Units are in the key names;
values are converted to SI where the library uses them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    ValidationError,
    model_validator,
)

from dime_pipeline.errors import UserError, config_error, one_line

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
    "heterogeneous",
    "liver",
    "mesh",
)
FAMILIES = ("homogeneous", "heterogeneous", "liver")  # families with a working generator
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class DriverConfig(_Strict):
    """The pneumatic driver: a prescribed harmonic displacement on a random boundary arc."""

    amplitude_um: float = Field(20.0, gt=0)
    arc_deg: Range = Range(min=30.0, max=90.0)


class IntRange(_Ordered):
    """A closed integer interval [min, max], drawn uniformly per sample."""

    min: NonNegativeInt
    max: NonNegativeInt


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

    @model_validator(mode="after")
    def _offsets(self) -> Self:
        if self.offsets in (1, 2) or self.offsets < 0:
            raise ValueError("offsets must be 0 (no phase images) or >= 3")
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
    The training keys are passed to ``dime-pipeline train``; null keeps its default.
    """

    model: Literal["shipped", "trained"] = "shipped"
    max_epochs: int | None = Field(None, ge=1)
    crops_per_epoch: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    num_workers: int | None = Field(None, ge=0)
    patch_size: int | None = Field(None, ge=8)
    width: int | None = Field(None, ge=4)
    depth: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    seed: int | None = Field(None, ge=0)
    accelerator: str | None = Field(None, description="auto, cpu, gpu")
    devices: int | None = Field(None, ge=1)
    precision: str | None = Field(None, description="32-true, bf16-mixed, ...")

    def train_options(self) -> str:
        """The command-line options of ``dime-pipeline train`` for the keys that are set."""
        values = self.model_dump(exclude={"model"}, exclude_none=True)
        return " ".join(f"--{key.replace('_', '-')} {value}" for key, value in values.items())


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
    heterogeneous: HeterogeneousConfig = HeterogeneousConfig()
    liver: LiverConfig = LiverConfig()
    mesh: MeshConfig = MeshConfig()
    solver: SolverConfig = SolverConfig()
    acquisition: AcquisitionConfig = AcquisitionConfig()
    datasets: DatasetsConfig = DatasetsConfig()
    dime: DimeConfig = DimeConfig()

    @model_validator(mode="after")
    def _positive_frequency(self) -> Self:
        if self.frequency_hz.min <= 0:
            raise ValueError("frequency_hz: min must be > 0")
        return self

    def digest(self, keys: Sequence[str] | None = None) -> str:
        """A short hash of the canonical JSON of this config (the store's ``config_hash``), or
        of the top-level ``keys`` only."""
        values = self.model_dump(mode="json")
        if keys is not None:
            values = {key: values[key] for key in keys}
        canonical = json.dumps(values, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def validate_config(raw: dict[str, Any], what: str = "config") -> PipelineConfig:
    """Validate a config mapping, raising :class:`UserError` with one line naming the key."""
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as error:
        raise config_error(error, what) from None


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """Read and validate a YAML config file (the packaged default when ``path`` is None)."""
    path = path or DEFAULT_CONFIG
    return validate_config(read_yaml_mapping(path, "config"), f"config {path}")


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The top-level mapping of a YAML file (empty file: {}); UserError naming ``what`` and,
    for a syntax error, the problem and where it is."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
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
