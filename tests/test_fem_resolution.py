"""The default mesh resolution keeps the plane-wave error under 1 %; a coarse one does not.

Two points of benchmarks/bench_fem_resolution.py (whose channel, meshes and error measure this
test loads, so test and table cannot drift apart): a channel six shear wavelengths long — the
longest path in the default study — at loss ratio 0.1, structured mesh (the worse of the two mesh
kinds at 8 elements per wavelength). Measured: 0.45 % (anti-plane) and 0.43 % (plane strain) at 8,
14 % and 13 % at 3; the P2 error falls like (elements per wavelength)⁻³.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from dime_pipeline.config import load_config

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_fem_resolution.py"


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fem_resolution", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    if str(BENCHMARK.parent) not in sys.path:  # as when run as a script: `common` beside it
        sys.path.append(str(BENCHMARK.parent))
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("physics", ["antiplane", "plane_strain"])
def test_default_resolution_error_under_1_percent(jit_cache, physics):
    bench = _benchmark()
    default = load_config().mesh.elements_per_wavelength  # config/config.yaml, what studies use
    case = bench.Case(physics=physics, loss_ratio=0.1, mesh="structured")
    fine = bench.run_case(case, default, jit_cache)
    coarse = bench.run_case(case, 3, jit_cache)
    if fine is not None:
        assert fine["error"] < 0.01, fine
        # 3 elements per wavelength is far outside the tolerance: the measure does see it.
        assert coarse["error"] > 0.05, coarse
        assert coarse["error"] > 10 * fine["error"]
