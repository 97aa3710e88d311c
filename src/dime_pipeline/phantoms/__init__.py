"""Phantom families: random but reproducible tissue geometries, materials and drivers."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dime_pipeline.config import PipelineConfig
from dime_pipeline.errors import UserError
from dime_pipeline.phantoms.heterogeneous import draw_heterogeneous
from dime_pipeline.phantoms.homogeneous import draw_homogeneous
from dime_pipeline.phantoms.liver import draw_liver
from dime_pipeline.phantoms.spec import MESH_FILE, PREVIEW_FILE, SPEC_FILE, PhantomSpec
from dime_pipeline.phantoms.waves import vary_wave_field
from dime_pipeline.seeding import generator, sample_seed
from dime_pipeline.store import atomic_directory

log = logging.getLogger(__name__)

GENERATORS: dict[str, Callable[[PipelineConfig, int], PhantomSpec]] = {
    "homogeneous": draw_homogeneous,
    "heterogeneous": draw_heterogeneous,
    "liver": draw_liver,
}


def draw_phantom(
    family: str, seed: int, config: PipelineConfig, dim: int | None = None
) -> PhantomSpec:
    """The spec of phantom ``family`` drawn from ``seed`` (``dim`` overrides ``config.dim``)."""
    if family not in GENERATORS:
        raise UserError(f"unknown phantom family '{family}' (choose from {', '.join(GENERATORS)})")
    if dim is not None and dim != config.dim:
        # The spec's config hash then describes the config the phantom was really drawn with.
        config = config.model_validate({**config.model_dump(), "dim": dim})
    sizes = config.grid.voxel_size_range_mm
    if sizes is None:
        return vary_wave_field(GENERATORS[family](config, seed), config)
    # A voxel-size sweep: this sample's voxel edge comes from its own stream, so the phantom's
    # other draws are those of a fixed-size study; the spec keeps the study's config hash.
    voxel_mm = generator(sample_seed(seed, "voxel-size", 0)).uniform(sizes.min, sizes.max)
    raw = config.model_dump()
    raw["grid"] = {**raw["grid"], "voxel_size_mm": voxel_mm, "voxel_size_range_mm": None}
    spec = vary_wave_field(GENERATORS[family](config.model_validate(raw), seed), config)
    return dataclasses.replace(spec, config_hash=config.digest())


def make_phantom(
    family: str,
    seed: int,
    config: PipelineConfig,
    out_dir: Path,
    dim: int | None = None,
    preview: bool = True,
) -> PhantomSpec:
    """Draw a phantom of ``family`` from ``seed``, mesh it, and write ``out_dir`` atomically:
    ``mesh.msh``, ``phantom.json``, ``modulus_field.npy`` (when the spec has a field) and
    ``preview.png`` (unless ``preview`` is False)."""
    from dime_pipeline.phantoms.fields import realize
    from dime_pipeline.phantoms.meshing import mesh_phantom

    spec = draw_phantom(family, seed, config, dim)
    with atomic_directory(Path(out_dir)) as tmp:
        tmp.mkdir()
        if spec.modulus_field is not None:
            np.save(tmp / spec.modulus_field.file, realize(spec.modulus_field))
        mesh_phantom(spec, tmp / MESH_FILE)
        (tmp / SPEC_FILE).write_text(spec.to_json() + "\n")
        if preview:
            from dime_pipeline.phantoms.preview import write_preview

            write_preview(spec, tmp, tmp / PREVIEW_FILE)
    log.info("wrote phantom %s (family %s, dim %d, seed %d)", out_dir, family, spec.dim, seed)
    return spec
