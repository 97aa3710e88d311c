"""The config models' shared base: strict models and drawn ranges."""

from __future__ import annotations

from typing import Self

from pydantic import (
    BaseModel,
    NonNegativeInt,
    model_validator,
)

from dime_pipeline.strictness import STRICT


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


class IntRange(_Ordered):
    """A closed integer interval [min, max], drawn uniformly per sample."""

    min: NonNegativeInt
    max: NonNegativeInt


# Driver direction kinds (their meaning: phantoms.spec) and outer boundary kinds.
