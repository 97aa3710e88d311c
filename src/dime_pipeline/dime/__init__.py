"""DIME: patch-based deep inversion of MRE wave fields (Iftikhar, Ahmad, Kolipaka, 2025).

The names below load on first use (PEP 562): the study config imports ``dime.settings``
(pure pydantic) without paying for torch. The training side (``data``, ``module``,
``training``) needs Lightning and is imported from its modules directly.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DimeModel": "model_file",
    "as_model": "model_file",
    "dime_inversion": "inference",
    "invert_dime": "inference",
    "load_model": "model_file",
    "save_model": "model_file",
    "DimeUNet": "network",
    "UNetConfig": "settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
