"""Anatomy-informed liver phantoms (axial slice in 2D, a slab of the upper abdomen in 3D).

Coordinates follow the radiological display: x increases towards the patient's left (image
right), y towards anterior (up); z is cranio-caudal (+z superior). The model, from outside in:

* body: a superellipse outline of an adult abdomen (``liver.body``), the skin;
* fat: subcutaneous fat, the layer between the skin and an inner outline ``fat.thickness_mm``
  deeper; inside it, "body" stands for the body-wall muscle and other abdominal tissue;
* liver: a smooth closed spline through a 14-point template (right lobe on the patient's right,
  left lobe reaching across the midline anteriorly), jittered, stretched to the drawn width and
  depth, the left lobe's reach and thickness drawn separately; placed against the right and
  anterior inner wall, ``wall_gap_mm`` away (moved towards the body centre, then shrunk, if it
  would not fit). In 3D the liver is a loft through seven such sections whose size tapers
  towards the dome and the inferior tip, the left lobe fading inferiorly. Lobes are split at the
  falciform line (template u = 0.05): the anatomical right lobe holds about 75-85 %;
* vessels: portal and hepatic veins as soft, lossy tubes kept inside the liver (2D: hepatic
  veins cut across, portal branches running in-plane; 3D: cylinders along anatomical courses);
* optional spleen (a crescent along the posterolateral left wall; 3D: a loft of crescents) and
  focal lesions (slightly elongated discs/ellipsoids) inside the liver.

All lengths in ``liver.*_mm`` are adult anatomy; the phantom is that anatomy times one scale
s = fov_fill × min(FOV_x / body width, FOV_y / body depth), so the body fills ``fov_fill`` of
the field of view whatever the grid (s ≈ 0.21-0.29 for the default 64 × 1.5 mm grid, ≈ 1 for a
clinical 36 cm FOV). Wavelengths are not scaled: a small FOV holds fewer wavelengths. Floors in
voxels keep small features (fat, vessels, lesions) resolvable.

Region tags (fixed; absent regions are skipped): body 1, fat 2, liver 3, portal_vein 4,
hepatic_veins 5, spleen 6, lesion_k 6 + k. The liver's median |G*| comes from the fibrosis
stage (``liver.stage_modulus_kpa``), and a random field exp(σ g) (``heterogeneity_sigma``)
multiplies it. The driver is a patch on the anterior skin over the liver; the rest of the
skin is traction-free; in 3D the slab's top and bottom cuts are absorbing.

The family is split by concern: ``anatomy`` (body, liver frame and sections, containment checks,
liver measures), ``structures`` (vessels, spleen, lesions), ``materials`` (tissues and the
modulus field) and ``driver``; this module draws them in a fixed order and records the geometry.
"""

from __future__ import annotations

from dime_pipeline.config import PipelineConfig
from dime_pipeline.phantoms.common import make_grid, mesh_size
from dime_pipeline.phantoms.fields import realize
from dime_pipeline.phantoms.liver.anatomy import (
    BODY,
    FAT,
    FIRST_LESION_TAG,
    HEPATIC,
    LIVER,
    PORTAL,
    SPLEEN,
    Anatomy,
    draw_body_and_liver,
    layer,
    liver_measures,
    liver_shape,
)
from dime_pipeline.phantoms.liver.driver import draw_driver
from dime_pipeline.phantoms.liver.materials import draw_field, draw_materials
from dime_pipeline.phantoms.liver.structures import draw_lesions, draw_spleen, draw_vessels
from dime_pipeline.phantoms.spec import (
    ABSORBING_TAG,
    DRIVER_TAG,
    FREE_TAG,
    PhantomSpec,
    Region,
)
from dime_pipeline.seeding import generator

VESSEL_ELEMENTS = 3  # elements across a vessel's diameter
LESION_ELEMENTS = 4


def draw_liver(config: PipelineConfig, seed: int) -> PhantomSpec:
    """Draw every random choice of one liver phantom from its own stream."""
    rng = generator(seed)
    frequency = float(rng.uniform(config.frequency_hz.min, config.frequency_hz.max))
    anatomy = draw_body_and_liver(config, rng)
    shapes = [
        layer(anatomy, anatomy.outer, FAT),
        layer(anatomy, anatomy.inner, BODY),
        liver_shape(anatomy),
    ]
    vessels = draw_vessels(config, rng, anatomy)
    spleen = draw_spleen(config, rng, anatomy)
    lesions = draw_lesions(config, rng, anatomy, vessels)
    shapes += vessels + ([spleen] if spleen else []) + lesions
    stage, regions = draw_materials(config, rng, frequency, shapes)
    driver = draw_driver(config, rng, anatomy)
    heterogeneity = draw_field(config, rng, anatomy)
    softest = {LIVER: float(realize(heterogeneity).min())} if heterogeneity else {}
    size = mesh_size(config, regions, frequency, softest)
    z_centre = 0.0  # the liver is centred on z = 0; so is the slice stack
    return PhantomSpec(
        family="liver",
        seed=seed,
        dim=config.dim,
        frequency_hz=frequency,
        regions=tuple(regions),
        driver=driver,
        grid=make_grid(config, z_centre),
        mesh_size_m=size,
        geometry=_geometry(anatomy, shapes, stage, regions, size),
        config_hash=config.digest(),
        modulus_field=heterogeneity,
        boundary_tags=_boundary_tags(anatomy.dim),
    )


def _boundary_tags(dim: int) -> dict[str, int]:
    tags = {"driver": DRIVER_TAG, "free": FREE_TAG}
    return {**tags, "absorbing": ABSORBING_TAG} if dim == 3 else tags


# ---------------------------------------------------------------- geometry record


def _geometry(
    anatomy: Anatomy, shapes: list[dict], stage: str, regions: list[Region], size: float
) -> dict:
    refine: dict[str, float] = {}
    for shape in shapes:
        if shape["region"] in (PORTAL, HEPATIC):
            feature = 2 * (shape["radius_m"] if "radius_m" in shape else min(shape["semi_axes_m"]))
            elements = VESSEL_ELEMENTS
        elif shape["region"] >= FIRST_LESION_TAG:
            feature, elements = 2 * min(shape["semi_axes_m"]), LESION_ELEMENTS
        else:
            continue
        key = str(shape["region"])
        refine[key] = min(refine.get(key, size), feature / elements)
    liver = next(r for r in regions if r.tag == LIVER)
    return {
        "kind": "liver",
        "centre_m": anatomy.centre.tolist(),
        "scale": anatomy.scale,
        "fat_thickness_m": anatomy.fat_thickness,
        "wall_gap_m": anatomy.gap,
        "liver_frame": anatomy.frame,
        "stage": stage,
        "liver_modulus_pa": abs(liver.shear_modulus),
        "anatomy": _anatomy_summary(anatomy, shapes),
        "shapes": shapes,
        "boundary": {
            "rest": "free",
            "caps_z_m": list(anatomy.z_range) if anatomy.dim == 3 else None,
        },
        "refine": refine,
    }


def _anatomy_summary(anatomy: Anatomy, shapes: list[dict]) -> dict:
    measure, right = liver_measures(anatomy.frame, anatomy.dim)
    counts = {
        name: sum(s["region"] == tag for s in shapes)
        for name, tag in (("portal_vein", PORTAL), ("hepatic_veins", HEPATIC), ("spleen", SPLEEN))
    }
    counts["lesions"] = sum(s["region"] >= FIRST_LESION_TAG for s in shapes)
    key = "liver_area_m2" if anatomy.dim == 2 else "liver_volume_m3"
    return {key: measure, "right_lobe_fraction": right, **counts}
