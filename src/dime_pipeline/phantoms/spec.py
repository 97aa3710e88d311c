"""The phantom description written beside the mesh (``phantom.json``) and read by ``simulate``.

Everything the solver needs that is not geometry lives here, in SI units: regions and their
materials at the simulated frequency, the driver, the sampling grid and the mesh size used.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dime_pipeline.errors import UserError

SPEC_FILE = "phantom.json"
MESH_FILE = "mesh.msh"
SPEC_VERSION = 1

# Facet tags of the gmsh physical groups.
DRIVER_TAG = 1
ABSORBING_TAG = 2


@dataclass(frozen=True)
class Region:
    """A tissue region, tagged ``tag`` on the mesh cells, with its material at ``frequency_hz``."""

    tag: int
    name: str
    storage_modulus_pa: float
    loss_modulus_pa: float
    density_kg_m3: float
    bulk_modulus_pa: float

    @property
    def shear_modulus(self) -> complex:
        return complex(self.storage_modulus_pa, self.loss_modulus_pa)


@dataclass(frozen=True)
class Driver:
    """A prescribed harmonic displacement ``amplitude_m * direction`` on a boundary arc."""

    start_angle_rad: float
    arc_rad: float
    amplitude_m: float
    direction: tuple[float, float, float]


@dataclass(frozen=True)
class Grid:
    """Voxel grid: pixel (j, i) has centre ((i + 0.5) * voxel_size_m, (j + 0.5) * voxel_size_m)."""

    shape: tuple[int, ...]
    voxel_size_m: float

    def pixel_centres(self) -> np.ndarray:
        """Centres as an (N, 3) array in C order over ``shape`` = (ny, nx), z = 0."""
        ny, nx = self.shape
        y, x = np.meshgrid(
            (np.arange(ny) + 0.5) * self.voxel_size_m,
            (np.arange(nx) + 0.5) * self.voxel_size_m,
            indexing="ij",
        )
        return np.column_stack([x.ravel(), y.ravel(), np.zeros(x.size)])


@dataclass(frozen=True)
class PhantomSpec:
    family: str
    seed: int
    dim: int
    frequency_hz: float
    regions: tuple[Region, ...]
    driver: Driver
    grid: Grid
    mesh_size_m: float
    geometry: dict[str, Any]
    config_hash: str

    @property
    def angular_frequency(self) -> float:
        return 2.0 * np.pi * self.frequency_hz

    def to_json(self) -> str:
        return json.dumps({"spec_version": SPEC_VERSION, **asdict(self)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PhantomSpec:
        raw = json.loads(text)
        if raw.pop("spec_version", None) != SPEC_VERSION:
            raise ValueError(f"unsupported spec_version (this version reads {SPEC_VERSION})")
        raw["regions"] = tuple(Region(**region) for region in raw["regions"])
        raw["driver"] = Driver(**{**raw["driver"], "direction": tuple(raw["driver"]["direction"])})
        raw["grid"] = Grid(
            shape=tuple(raw["grid"]["shape"]), voxel_size_m=raw["grid"]["voxel_size_m"]
        )
        return cls(**raw)


def read_spec(phantom_dir: str | Path) -> PhantomSpec:
    """Read ``phantom.json`` from a phantom folder, with one clear error if it is unusable."""
    path = Path(phantom_dir) / SPEC_FILE
    if not (Path(phantom_dir) / MESH_FILE).is_file():
        raise UserError(f"{phantom_dir}: not a phantom folder (no {MESH_FILE})")
    try:
        return PhantomSpec.from_json(path.read_text())
    except OSError:
        raise UserError(f"{phantom_dir}: not a phantom folder (no {SPEC_FILE})") from None
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path}: invalid phantom description ({error})") from None
