"""Baseline inversions: plain direct inversion (DI) and MMDI; see docs/mmdi.md."""

from dime_pipeline.inversion.direct import DIParameters, direct_inversion
from dime_pipeline.inversion.harmonic import first_harmonic, wave_images
from dime_pipeline.inversion.multimodel import MMDIParameters, mmdi
from dime_pipeline.inversion.result import InversionResult

__all__ = [
    "DIParameters",
    "InversionResult",
    "MMDIParameters",
    "direct_inversion",
    "first_harmonic",
    "mmdi",
    "wave_images",
]
