"""How the wave field is acquired: noise, offsets, averaging, contamination."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import (
    Field,
    PositiveFloat,
    model_validator,
)

from dime_pipeline.config.base import _Strict

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
