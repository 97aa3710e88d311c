"""Users' MRE data for ``dime-pipeline invert``: reading INPUT, writing OUT (docs/inversions.md).

INPUT is one of
- NIfTI, ``--layout offsets``: real wave images with the 3 ≤ N ≤ 32 phase offsets on the last
  axis, shape (X, Y, T), (X, Y, Z, T) or (X, Y, Z, C, T) for C encoding components; the first
  harmonic is DFT bin 1 over the offsets (no phase unwrapping is done);
- NIfTI, ``--layout complex``: real and imaginary parts of U on a last axis of length 2,
  (X, Y, 2), (X, Y, Z, 2) or (X, Y, Z, C, 2);
- a complex ``.npy`` in the library's axis order: (y, x), (z, y, x) or (component, z, y, x);
- a MATLAB ``.mat`` (v4-v7 or v7.3/HDF5) holding such a complex array, ``size(U)`` in the same
  order ([y x], [z y x], [component z y x]); ``--mat-variable`` picks one of several arrays;
- a sample store folder (``dime_pipeline.store``): its ``measured`` field when it has one (an
  acquired store), else the noise-free ``displacement``.
Inside, fields use the library's axes (component, [z,] y, x): NIfTI axes (i, j, k) are reversed
on reading and restored on writing, so OUT keeps INPUT's array axes and orientation, untransposed
(its affine in mm, with the in-plane voxel sizes the inversion used). The unit of the field does
not matter (G* = -ρω² U/∇²U is scale-free), only its consistency.

Modules: :mod:`.readers` (INPUT, mask), :mod:`.nifti` and :mod:`.arrays` (the formats),
:mod:`.matlab` (.mat files), :mod:`.checks`
(plausibility: errors and warnings), :mod:`.memory` (the memory a run needs, checked first),
:mod:`.writers` (OUT, JSON summary, confidence mask) and
:mod:`.preview` (``--png``).
"""

from dime_pipeline.userdata.checks import (
    DENSITY_BOUNDS_KG_M3,
    FREQUENCY_BOUNDS_HZ,
    MAX_USER_OFFSETS,
    MIN_IN_PLANE_PX,
    VOXEL_BOUNDS_MM,
    check_wavelengths,
    collected_warnings,
)
from dime_pipeline.userdata.memory import WORK_PER_FIELD_BYTE, check_memory
from dime_pipeline.userdata.nifti import LAYOUTS, NIFTI_SUFFIXES
from dime_pipeline.userdata.readers import (
    DEFAULT_DENSITY_KG_M3,
    UserVolume,
    check_output_path,
    input_kind,
    load_user_data,
    remove_channel_offsets,
)
from dime_pipeline.userdata.writers import (
    CONFIDENCE_LEVEL,
    OUTPUT_VOLUMES,
    WAVE_VOLUMES,
    Extras,
    clinical_confidence_mask,
    output_maps,
    shear_wave_speed,
    summary_path,
    wavelength_px,
    write_outputs,
)

__all__ = [
    "CONFIDENCE_LEVEL",
    "DEFAULT_DENSITY_KG_M3",
    "DENSITY_BOUNDS_KG_M3",
    "FREQUENCY_BOUNDS_HZ",
    "LAYOUTS",
    "MAX_USER_OFFSETS",
    "MIN_IN_PLANE_PX",
    "NIFTI_SUFFIXES",
    "OUTPUT_VOLUMES",
    "VOXEL_BOUNDS_MM",
    "WAVE_VOLUMES",
    "WORK_PER_FIELD_BYTE",
    "Extras",
    "UserVolume",
    "check_memory",
    "check_output_path",
    "check_wavelengths",
    "clinical_confidence_mask",
    "collected_warnings",
    "input_kind",
    "load_user_data",
    "output_maps",
    "remove_channel_offsets",
    "shear_wave_speed",
    "summary_path",
    "wavelength_px",
    "write_outputs",
]
