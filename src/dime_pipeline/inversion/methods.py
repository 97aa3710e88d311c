"""The inversion methods by name: one place that maps ``--method`` to a callable.

Every method is called as ``invert(displacement, voxel_size_m, frequency_hz, density_kg_m3,
mask)`` and returns an :class:`InversionResult`. DIME needs a model file: the one given, else
``$DIME_MODEL``, else the pretrained model shipped with the package (``dime.model_file``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from dime_pipeline.inversion.result import InversionResult

METHODS = ("dime", "mmdi", "di")
Inverter = Callable[..., InversionResult]


def inverter(
    method: str, model: str | Path | None = None, parameters: Any = None
) -> tuple[Inverter, dict[str, Any]]:
    """The callable for ``method`` and a description of its parameters (for provenance).

    ``parameters``: ``MMDIParameters`` / ``DIParameters`` for those methods (defaults if None).
    """
    from dataclasses import asdict

    if method in ("mmdi", "di"):
        from dime_pipeline.inversion.direct import DIParameters, direct_inversion
        from dime_pipeline.inversion.multimodel import MMDIParameters, mmdi

        invert, kind = (
            (mmdi, MMDIParameters) if method == "mmdi" else (direct_inversion, DIParameters)
        )
        params = parameters if parameters is not None else kind()
        if not isinstance(params, kind):
            raise TypeError(f"{method} takes {kind.__name__}, got {type(params).__name__}")
        return partial(invert, params=params), asdict(params)
    if method == "dime":
        from dime_pipeline.dime.inference import dime_inversion
        from dime_pipeline.dime.model_file import default_model_path, load_model

        path = Path(model) if model is not None else default_model_path()
        loaded = load_model(path)
        description = {"model": str(path), "calibration": loaded.calibration}
        return partial(dime_inversion, model=loaded), description
    raise ValueError(f"unknown inversion method {method!r} (choose from {', '.join(METHODS)})")
