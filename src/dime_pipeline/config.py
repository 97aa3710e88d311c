"""Typed configuration: the single source of truth for every parameter of a study.

``config/config.yaml`` is validated through :class:`PipelineConfig` before any job runs (the
Snakefile does it at parse time, the CLI when given ``--config``). Units are in the key names;
values are converted to SI where the library uses them.
"""

from __future__ import annotations

import hashlib
import json
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

from dime_pipeline.errors import UserError

FAMILIES = ("homogeneous",)  # families with a working generator; more arrive with their issue
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    """A closed interval [min, max] from which a value is drawn uniformly per sample."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class GridConfig(_Strict):
    """The voxel grid the wave field is sampled on, like an MRE magnitude image."""

    shape: tuple[int, int] = Field((64, 64), description="pixels (ny, nx)")
    voxel_size_mm: float = Field(1.5, gt=0.1, le=10.0, description="in-plane voxel edge, mm")

    @model_validator(mode="after")
    def _shape_positive(self) -> Self:
        if min(self.shape) < 8:
            raise ValueError("shape: each axis needs at least 8 pixels")
        return self

    @property
    def voxel_size_m(self) -> float:
        return self.voxel_size_mm * 1e-3

    @property
    def field_of_view_m(self) -> tuple[float, float]:
        return (self.shape[0] * self.voxel_size_m, self.shape[1] * self.voxel_size_m)


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


class PipelineConfig(_Strict):
    """A whole study. Every key has a default; the YAML overrides what it names."""

    seed: int = Field(2025, ge=0, description="root of every random stream")
    samples: dict[Literal["homogeneous"], NonNegativeInt] = Field(
        default_factory=lambda: {"homogeneous": 4}, description="samples per phantom family"
    )
    dim: Literal[2] = 2
    frequency_hz: Range = Range(min=50.0, max=70.0)
    grid: GridConfig = GridConfig()
    materials: MaterialConfig = MaterialConfig()
    domain: DomainConfig = DomainConfig()
    driver: DriverConfig = DriverConfig()
    mesh: MeshConfig = MeshConfig()
    solver: SolverConfig = SolverConfig()
    acquisition: AcquisitionConfig = AcquisitionConfig()
    datasets: DatasetsConfig = DatasetsConfig()

    @model_validator(mode="after")
    def _positive_frequency(self) -> Self:
        if self.frequency_hz.min <= 0:
            raise ValueError("frequency_hz: min must be > 0")
        return self

    def digest(self) -> str:
        """A short hash of the canonical JSON of this config (the store's ``config_hash``)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def validate_config(raw: dict[str, Any]) -> PipelineConfig:
    """Validate a config mapping, raising :class:`UserError` with one line naming the key."""
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "config"
        value = first.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        more = f" [+{error.error_count() - 1} more]" if error.error_count() > 1 else ""
        raise UserError(f"config key '{key}': {first['msg']}{shown}{more}") from None


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """Read and validate a YAML config file (the packaged default when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise UserError(f"cannot read config {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise UserError(f"config {path} is not valid YAML: {error}".splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise UserError(f"config {path}: top level must be a mapping of keys")
    return validate_config(raw)


def dump_config(config: PipelineConfig) -> str:
    """The YAML text of a validated config, every key spelled out."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
