"""DIME: patch-based deep inversion of MRE wave fields (Iftikhar, Ahmad, Kolipaka, 2025).

Light imports only (torch, numpy): the training side (``data``, ``module``, ``training``) needs
Lightning and is imported from its modules directly.
"""

from dime_pipeline.dime.inference import (
    DimeModel,
    as_model,
    dime_inversion,
    invert_dime,
    load_model,
    save_model,
)
from dime_pipeline.dime.network import DimeUNet, UNetConfig

__all__ = [
    "DimeModel",
    "DimeUNet",
    "UNetConfig",
    "as_model",
    "dime_inversion",
    "invert_dime",
    "load_model",
    "save_model",
]
