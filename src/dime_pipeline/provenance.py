"""Provenance of written stores and documents: the versions of the software that wrote them.

:func:`package_versions` is the one place that lists package versions (``versions`` attributes of
packs and estimates stores, ``provenance.json`` of the evaluation, the report). The numerical
stack of simulated sample stores (dolfinx, PETSc, gmsh) is
:func:`dime_pipeline.fem.backend.versions`.
"""

from __future__ import annotations

import importlib
import platform


def package_versions(*packages: str) -> dict[str, str]:
    """``{"python": ..., package: its ``__version__``, ...}`` in the order given.

    Each package is imported (so the version is the one that runs, not merely one installed);
    e.g. ``package_versions("numpy", "zarr", "dime_pipeline")``.
    """
    versions = {"python": platform.python_version()}
    for name in packages:
        versions[name] = str(importlib.import_module(name).__version__)
    return versions
