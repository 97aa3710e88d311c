"""Phantom families: random but reproducible tissue geometries, materials and drivers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from dime_pipeline.config import PipelineConfig
from dime_pipeline.errors import UserError
from dime_pipeline.phantoms.homogeneous import draw_homogeneous
from dime_pipeline.phantoms.spec import MESH_FILE, SPEC_FILE, PhantomSpec
from dime_pipeline.store import atomic_directory

log = logging.getLogger(__name__)

GENERATORS: dict[str, Callable[[PipelineConfig, int], PhantomSpec]] = {
    "homogeneous": draw_homogeneous,
}


def make_phantom(family: str, seed: int, config: PipelineConfig, out_dir: Path) -> PhantomSpec:
    """Draw a phantom of ``family`` from ``seed``, mesh it, and write ``out_dir`` atomically."""
    from dime_pipeline.phantoms.meshing import mesh_phantom

    if family not in GENERATORS:
        raise UserError(f"unknown phantom family '{family}' (choose from {', '.join(GENERATORS)})")
    spec = GENERATORS[family](config, seed)
    with atomic_directory(Path(out_dir)) as tmp:
        tmp.mkdir()
        mesh_phantom(spec, tmp / MESH_FILE)
        (tmp / SPEC_FILE).write_text(spec.to_json() + "\n")
    log.info("wrote phantom %s (family %s, seed %d)", out_dir, family, seed)
    return spec
