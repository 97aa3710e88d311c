"""What a phantom is drawn from: grid, materials, domain, drivers, boundaries, inclusions, the
liver's anatomy and the mesh."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import (
    Field,
    model_validator,
)

from dime_pipeline.config.base import IntRange, Range, _Strict


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
