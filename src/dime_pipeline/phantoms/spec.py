"""The phantom description written beside the mesh (``phantom.json``) and read by ``simulate``.

Everything the solver needs that is not geometry lives here, in SI units: regions and their
materials at the simulated frequency, the driver, the sampling grid, the mesh size used and, when
present, a smooth random modulus field (``modulus_field.npy``) that multiplies some regions' G*.
Fields added after the first release have defaults, so older ``phantom.json`` files still load.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dime_pipeline.config import DIRECTION_KINDS
from dime_pipeline.errors import UserError

SPEC_FILE = "phantom.json"
MESH_FILE = "mesh.msh"
FIELD_FILE = "modulus_field.npy"
PREVIEW_FILE = "preview.png"
SPEC_VERSION = 1

# Facet tags of the gmsh physical groups (dimension dim - 1).
DRIVER_TAG = 1  # prescribed displacement amplitude_m * direction (the first driver)
ABSORBING_TAG = 2  # first-order absorbing: emulates an unbounded medium (or a truncated body)
FREE_TAG = 3  # traction-free: skin against air
EXTRA_DRIVER_TAG = 10  # driver k >= 1 is tagged EXTRA_DRIVER_TAG + k, named "driver_k"
BOUNDARY_NAMES = {DRIVER_TAG: "driver", ABSORBING_TAG: "absorbing", FREE_TAG: "free"}
FULL_TURN = 2 * np.pi

# What a driver's direction is (``Driver.direction_kind``, one of config.DIRECTION_KINDS):
# "random", uniform on the sphere (in-plane and through-plane motion in random proportions; the
# first release's only kind); "normal" and "tangential" to the outline at the patch centre (in
# plane); "through_plane", along z. On a driver covering the whole outline, "normal" and
# "tangential" follow the outline (radial pulsation, torsion about the centre) instead of being
# one vector.

# The wave pattern of a phantom (``wave_pattern``, one of config.WAVE_PATTERNS), most specific
# first: one driver covering the whole outline (waves converge on the centre); several drivers
# (interference); one driver with traction-free (reflecting) outer boundary, everywhere or on
# some arcs (standing waves); one driver with an absorbing rest (waves travel out, as in an
# unbounded medium).


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
    """A prescribed harmonic displacement ``amplitude_m * direction`` on a boundary patch.

    2D: the outline between polar angles ``start_angle_rad`` and ``start_angle_rad + arc_rad``
    about ``geometry["centre_m"]``. 3D: the surface inside a cylinder of ``radius_m`` around
    ``axis`` (outward unit normal) through ``centre_m`` (a point on the surface), cut
    ``depth_m`` deep; the angles then give the patch's azimuthal extent, for information.
    """

    start_angle_rad: float
    arc_rad: float
    amplitude_m: float
    direction: tuple[float, float, float]
    centre_m: tuple[float, float, float] | None = None
    axis: tuple[float, float, float] | None = None
    radius_m: float | None = None
    depth_m: float | None = None
    # Added with wave-field variety; left out of phantom.json at these defaults (older files).
    phase_rad: float = 0.0  # the driver moves as amplitude_m e^{i phase} (relative timing)
    direction_kind: str = "random"  # DIRECTION_KINDS

    @property
    def whole_outline(self) -> bool:
        """The driver covers the whole outer boundary (2D outline or 3D surface)."""
        return self.arc_rad >= FULL_TURN - 1e-12

    @property
    def complex_amplitude(self) -> complex:
        return self.amplitude_m * complex(np.exp(1j * self.phase_rad))


@dataclass(frozen=True)
class Grid:
    """Voxel grid, ``shape`` = (ny, nx) in 2D and (nz, ny, nx) in 3D.

    Pixel (j, i) has centre origin + ((i + 0.5) Δ, (j + 0.5) Δ); in 3D slice k lies at
    z = origin_z + (k + 0.5) * slice_spacing_m (the stack is centred on the organ) and averages
    over ``slice_thickness_m``. In 2D the centres have z = origin_z (0).
    """

    shape: tuple[int, ...]
    voxel_size_m: float
    origin_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    slice_thickness_m: float | None = None
    slice_spacing_m: float | None = None

    @property
    def dim(self) -> int:
        return len(self.shape)

    def axes(self) -> tuple[np.ndarray, ...]:
        """Centre coordinates along (x, y[, z])."""
        x0, y0, z0 = self.origin_m
        ny, nx = self.shape[-2:]
        axes = (
            x0 + (np.arange(nx) + 0.5) * self.voxel_size_m,
            y0 + (np.arange(ny) + 0.5) * self.voxel_size_m,
        )
        if self.dim == 2:
            return axes
        if self.slice_spacing_m is None:
            raise ValueError("a 3D grid needs slice_spacing_m")
        return (*axes, z0 + (np.arange(self.shape[0]) + 0.5) * self.slice_spacing_m)

    def pixel_centres(self) -> np.ndarray:
        """Centres as an (N, 3) array in C order over ``shape`` ((ny, nx) or (nz, ny, nx))."""
        axes = self.axes()
        if self.dim == 2:
            y, x = np.meshgrid(axes[1], axes[0], indexing="ij")
            return np.column_stack([x.ravel(), y.ravel(), np.full(x.size, self.origin_m[2])])
        z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
        return np.column_stack([x.ravel(), y.ravel(), z.ravel()])


@dataclass(frozen=True)
class ModulusField:
    """A smooth multiplier of G* stored in ``file`` (float64, axes ([z,] y, x), like the grid).

    Value [.., j, i] sits at origin_m + (i dx, j dy[, k dz]) with ``spacing_m`` = (dx, dy[, dz]);
    the field is exp(sigma g), g a zero-mean unit-variance Gaussian random field with covariance
    exp(-r^2 / (2 correlation_length_m^2)), drawn from ``seed``. It multiplies the G* of the
    regions in ``region_tags``: linear interpolation at cell midpoints (solver) and voxel centres
    (ground truth); points outside the box take the nearest edge value.
    """

    file: str
    origin_m: tuple[float, ...]
    spacing_m: tuple[float, ...]
    region_tags: tuple[int, ...]
    shape: tuple[int, ...]
    sigma: float
    correlation_length_m: float
    seed: int


def _default_boundaries() -> dict[str, int]:
    return {"driver": DRIVER_TAG, "absorbing": ABSORBING_TAG}


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
    modulus_field: ModulusField | None = None
    # Facet physical groups present in the mesh, name -> tag (see the *_TAG constants).
    boundary_tags: dict[str, int] = field(default_factory=_default_boundaries)
    # Drivers after the first (tagged EXTRA_DRIVER_TAG + k); left out of phantom.json if none.
    extra_drivers: tuple[Driver, ...] = ()

    @property
    def angular_frequency(self) -> float:
        return 2.0 * np.pi * self.frequency_hz

    @property
    def drivers(self) -> tuple[Driver, ...]:
        return (self.driver, *self.extra_drivers)

    def driver_tag(self, k: int) -> int:
        return DRIVER_TAG if k == 0 else EXTRA_DRIVER_TAG + k

    @property
    def wave_pattern(self) -> str:
        """The phantom's wave pattern (one of ``WAVE_PATTERNS``)."""
        if any(driver.whole_outline for driver in self.drivers):
            return "converging"
        if len(self.drivers) > 1:
            return "multi_driver"
        boundary = self.geometry.get("boundary", {"rest": "absorbing"})
        if boundary["rest"] == "free" or boundary.get("free_arcs") or boundary.get("free_patches"):
            return "reflecting"
        return "absorbing"

    def region(self, name: str) -> Region:
        """The region called ``name`` (KeyError if absent)."""
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(name)

    def to_json(self) -> str:
        document = {"spec_version": SPEC_VERSION, **asdict(self)}
        if not self.extra_drivers:
            del document["extra_drivers"]
        for driver in (document["driver"], *document.get("extra_drivers", ())):
            for name, default in _LATER_DRIVER_FIELDS.items():
                if driver[name] == default:
                    del driver[name]  # phantoms without the later options keep their bytes
        return json.dumps(document, indent=2, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> PhantomSpec:
        raw = json.loads(text, parse_constant=_no_constant)
        if raw.pop("spec_version", None) != SPEC_VERSION:
            raise ValueError(f"unsupported spec_version (this version reads {SPEC_VERSION})")
        raw["regions"] = tuple(Region(**region) for region in raw["regions"])
        raw["driver"] = _driver(raw["driver"])
        raw["extra_drivers"] = tuple(_driver(d) for d in raw.get("extra_drivers", ()))
        raw["grid"] = Grid(**_tuples(raw["grid"], "shape", "origin_m"))
        if raw.get("modulus_field") is not None:
            names = ("origin_m", "spacing_m", "region_tags", "shape")
            raw["modulus_field"] = ModulusField(**_tuples(raw["modulus_field"], *names))
        spec = cls(**raw)
        for name in ("frequency_hz", "mesh_size_m"):
            if not getattr(spec, name) > 0:
                raise ValueError(f"{name} must be > 0 (got {getattr(spec, name)})")
        return spec


_LATER_DRIVER_FIELDS = {"phase_rad": 0.0, "direction_kind": "random"}


def _driver(raw: dict[str, Any]) -> Driver:
    driver = Driver(**_tuples(raw, "direction", "centre_m", "axis"))
    if driver.direction_kind not in DIRECTION_KINDS:
        raise ValueError(f"direction_kind {driver.direction_kind!r}: not in {DIRECTION_KINDS}")
    return driver


def _no_constant(name: str) -> None:
    """JSON's NaN and Infinity: no number of a phantom may be one (nor is any written so)."""
    raise ValueError(f"{name} is not a number a phantom can hold")


def _tuples(raw: dict[str, Any], *names: str) -> dict[str, Any]:
    """``raw`` with the JSON lists under ``names`` turned back into tuples."""
    return {k: tuple(v) if k in names and v is not None else v for k, v in raw.items()}


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
