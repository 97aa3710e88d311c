"""``benchmarks/dime_targets.py`` on the report's tiny pack: each correlation target comes with
its boundary and thin-structure split and the blurred-truth reference, a blurred map gains most
with its boundary band exact, and a bad band is one line."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from test_report import _estimates, _pack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import dime_targets

FAMILIES = ["homogeneous", "heterogeneous"]  # the report pack's two families, by target name


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("targets") / "results"
    pack = root / "datasets" / "test.zarr"
    rows = _pack(pack, families=FAMILIES)
    for method, quality in (("dime", 1.0), ("mmdi", 1.8)):  # quality 1: σ 1 px blur
        _estimates(root / "inversions" / method / "test.zarr", pack, method, rows, quality)
    return root.parent


def test_correlations_split_at_the_boundaries(study: Path) -> None:
    stores = sorted((study / "results" / "inversions").glob("*/test.zarr"))
    document = dime_targets.measure(study / "results/datasets/test.zarr", stores, bootstrap=20)
    heterogeneous = document["targets"]["heterogeneous r"]
    assert heterogeneous["n_phantoms"] == 2 and heterogeneous["n_samples"] == 4
    for method in ("dime", "mmdi"):
        entry = heterogeneous["methods"][method]
        split = entry["boundary"]
        # the disc's rim and the inclusion's edge: the band within 2 px of either
        assert 0.2 < split["near"] < 0.6
        low, high = entry["interval_95"]
        assert low <= entry["value"] <= high
        assert split["r_near_exact"] > entry["value"]
    blurred = heterogeneous["methods"]["dime"]
    # the blur's loss sits in the band: exact there recovers more than exact everywhere else
    assert blurred["boundary"]["r_near_exact"] > blurred["boundary"]["r_far_exact"]
    assert "boundary" not in document["targets"]["homogeneous CV %"]["methods"]["dime"]
    assert 0 <= blurred["boundary"]["thin"] <= 1
    # the resolution reference: the truth loses r steadily as its blur widens
    reference = list(heterogeneous["blurred_truth"].values())
    assert len(reference) == len(dime_targets.BLUR_FRACTIONS)
    assert all(a > b for a, b in itertools.pairwise(reference)) and reference[0] < 1


def test_the_command_prints_the_split_and_refuses_a_bad_band(study: Path, repo: Path) -> None:
    script = repo / "benchmarks" / "dime_targets.py"
    command = [sys.executable, str(script), str(study), "--bootstrap", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("heterogeneous r"))
    assert "exact there" in line and "exact elsewhere" in line and "thin" in line
    lines = result.stdout.splitlines()
    assert lines[lines.index(line) + 1].startswith("  the truth blurred at σ = 0.05 / 0.1 / 0.15")
    for option in ("--boundary-px", "--thin-px"):
        bad = subprocess.run([*command, option, "0"], capture_output=True, text=True, timeout=300)
        assert bad.returncode != 0
        assert bad.stderr.strip().splitlines() == [
            f"dime_targets.py: error: {option} must be 1 or more, got 0.0"
        ]


def test_the_validation_split_is_read_with_estimates_only(study: Path, repo: Path) -> None:
    pack = study / "results" / "datasets" / "val.zarr"
    rows = _pack(pack, families=FAMILIES)
    store = study / "val-dime.zarr"
    _estimates(store, pack, "dime", rows, 1.0)
    script = repo / "benchmarks" / "dime_targets.py"
    command = [sys.executable, str(script), str(study), "--bootstrap", "0", "--split", "val"]
    result = subprocess.run([*command, "--estimates", str(store)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "heterogeneous r" in result.stdout and "mmdi" not in result.stdout
    bare = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert bare.returncode != 0
    assert bare.stderr.strip().splitlines() == [
        "dime_targets.py: error: --split val needs --estimates: the workflow inverts only test"
    ]
