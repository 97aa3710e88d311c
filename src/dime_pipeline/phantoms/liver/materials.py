"""The liver phantom's materials: the fibrosis stage, each present region's tissue (|G*| and
loss ratio at the reference frequency, carried to the sample's frequency) and the liver's random
modulus field. Drawn after the geometry, from which they only take the regions present and the
body's extent.
"""

from __future__ import annotations

import numpy as np

from dime_pipeline.config import PipelineConfig, TissueConfig
from dime_pipeline.phantoms.common import material_region
from dime_pipeline.phantoms.fields import draw_modulus_field
from dime_pipeline.phantoms.liver.anatomy import (
    BODY,
    FAT,
    FIRST_LESION_TAG,
    HEPATIC,
    LIVER,
    PORTAL,
    SPLEEN,
    Anatomy,
    draw_uniform,
)
from dime_pipeline.phantoms.spec import ModulusField, Region

STAGES = ("F0", "F1", "F2", "F3", "F4")


def _tissue(
    config: PipelineConfig,
    rng: np.random.Generator,
    tissue: TissueConfig,
    tag: int,
    name: str,
    frequency: float,
) -> Region:
    """|G*| and loss ratio at the reference frequency -> G', G'' -> G* at ``frequency``."""
    modulus = draw_uniform(rng, tissue.modulus_kpa, 1e3)
    ratio = draw_uniform(rng, tissue.loss_ratio)
    storage = modulus / np.hypot(1.0, ratio)
    return material_region(
        config, tag, name, storage, ratio * storage, frequency, tissue.density_kg_m3
    )


def draw_materials(
    config: PipelineConfig, rng: np.random.Generator, frequency: float, shapes: list[dict]
) -> tuple[str, list[Region]]:
    settings = config.liver
    stages = [s for s in STAGES if settings.stage_probabilities.get(s, 0.0) > 0]
    odds = np.array([settings.stage_probabilities[s] for s in stages])
    stage = stages[int(rng.choice(len(stages), p=odds / odds.sum()))]
    liver = TissueConfig(
        modulus_kpa=settings.stage_modulus_kpa[stage],
        loss_ratio=settings.loss_ratio,
        density_kg_m3=settings.density_kg_m3,
    )
    present = {shape["region"] for shape in shapes}
    catalogue = [
        (BODY, "body", settings.body.tissue),
        (FAT, "fat", settings.fat.tissue),
        (LIVER, "liver", liver),
        (PORTAL, "portal_vein", settings.vessels.tissue),
        (HEPATIC, "hepatic_veins", settings.vessels.tissue),
        (SPLEEN, "spleen", settings.spleen.tissue),
    ]
    regions = [
        _tissue(config, rng, tissue, tag, name, frequency)
        for tag, name, tissue in catalogue
        if tag in present
    ]
    for tag in sorted(t for t in present if t >= FIRST_LESION_TAG):
        name = f"lesion_{tag - FIRST_LESION_TAG + 1}"
        regions.append(_tissue(config, rng, settings.lesions.tissue, tag, name, frequency))
    return stage, regions


def draw_field(
    config: PipelineConfig, rng: np.random.Generator, anatomy: Anatomy
) -> ModulusField | None:
    """The liver's random heterogeneity on the body's bounding box (None when σ = 0)."""
    settings = config.liver
    if settings.heterogeneity_sigma == 0:
        return None
    correlation = settings.heterogeneity_correlation_mm * 1e-3
    spacing = min(anatomy.voxel, correlation / 4)
    half = np.asarray(anatomy.outer["semi_axes_m"])
    lower, upper = anatomy.centre - half - spacing, anatomy.centre + half + spacing
    if anatomy.dim == 3:
        lower = np.append(lower, anatomy.z_range[0] - spacing)
        upper = np.append(upper, anatomy.z_range[1] + spacing)
    return draw_modulus_field(
        rng, lower, upper, spacing, settings.heterogeneity_sigma, correlation, [LIVER]
    )
