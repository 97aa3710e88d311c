"""The study config, :class:`PipelineConfig` (every key of ``config/config.yaml``), and its
digests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

from pydantic import (
    Field,
    NonNegativeInt,
    model_validator,
)

from dime_pipeline.config.acquisition import AcquisitionConfig
from dime_pipeline.config.base import Range, _Strict
from dime_pipeline.config.phantoms import (
    BoundaryConfig,
    DomainConfig,
    DriverConfig,
    GridConfig,
    HeterogeneousConfig,
    LiverConfig,
    MaterialConfig,
    MeshConfig,
)
from dime_pipeline.dime.settings import TrainingConfig

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
DEFAULT_CONFIG = Path(__file__).resolve().parents[3] / "config" / "config.yaml"


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
