"""The MMDI calibration study on a two-liver cut of it, run for real: the study's configuration
runs (snakemake, clinical-scale 2D livers, through-plane motion, OSS-SNR 5), the calibration
script picks a rule that passes its exact-field checks and writes its report and figure, and on
these livers (seeds the calibration never saw) the calibrated defaults read the clinical liver ROI
within a few per cent, with pixel r well above plain DI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_workflow import _snakemake as snakemake

from dime_pipeline.inversion import MMDIParameters

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import calibrate_mmdi


@pytest.fixture(scope="module")
def study(repo: Path, tmp_path_factory: pytest.TempPathFactory, jit_cache: Path, tool_env) -> Path:
    folder = tmp_path_factory.mktemp("mmdi_calibration")
    overlay = {
        "seed": 7,  # not the study's seeds
        "samples": {"liver": 2},
        "acquisition": {"snr": [5.0]},
        "solver": {"jit_cache": str(jit_cache)},
    }
    (folder / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    config = [str(repo / "config" / "mmdi-calibration.yaml"), str(folder / "overlay.yaml")]
    result = snakemake(
        repo, folder, tool_env, "--cores", "2", "--omit-from", "pack", "--configfile", *config
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def test_calibrated_defaults_on_unseen_clinical_livers_at_snr_5(study: Path) -> None:
    """Measured (seed 7): ROI bias −1.9 % and −3.9 % (the previous defaults: +0.6 % and −3.8 % on
    these two); pooled pixel r 0.64 against −0.07 for DI (previous defaults 0.55). Bounds:
    |bias| ≤ 8 % per liver (the held-back half's per-liver biases at SNR 5 span −4 % to 0 %
    between quartiles) and r ≥ DI + 0.1 (the issue's)."""
    cases = list(calibrate_mmdi.load_cases([study]))
    assert len(cases) == 2 and {c.snr for c in cases} == {"5"}
    scores = [calibrate_mmdi.compare_case(case, MMDIParameters()) for case in cases]
    merged = {name: calibrate_mmdi.Score() for name in scores[0]}
    for score in scores:
        for name, part in score.items():
            merged[name].merge(part)
    tables = {name: score.table()["5"] for name, score in merged.items()}
    biases = merged["mmdi_calibrated"].biases["5"]
    assert all(abs(b) <= 0.08 for b in biases), biases
    assert tables["mmdi_calibrated"]["pixel_r"] >= tables["di"]["pixel_r"] + 0.1


def test_the_script_picks_an_admissible_rule_and_writes_its_report(
    study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A two-rule grid: the calibrated defaults' (low-pass at f / 1.1 m/s: passes the exact-field
    checks) and a low-pass at f / 2.2 m/s (its inclusion centre reads about 30 % low: refused)."""
    for name, values in {
        "LOWPASS_SPEEDS": (1.1, 2.2),
        "LOWPASS_ORDERS": (4,),
        "HIGHPASS_SPEEDS": (3.0,),
        "NOISE_DEBIAS": (True,),
        "WINDOW_WAVELENGTHS": (0.2,),
    }.items():
        monkeypatch.setattr(calibrate_mmdi, name, values)
    out, figure = tmp_path / "calibration.json", tmp_path / "calibration.png"
    report = calibrate_mmdi.main(
        [str(study), "--out", str(out), "--figure", str(figure), "--workers", "1"]
    )
    assert json.loads(out.read_text())["chosen"] == report["chosen"]
    assert report["chosen"]["lowpass_speed_m_s"] == 1.1
    refused = [r for r in report["calibration_half"]["by_rule"] if not r["admissible"]]
    assert [r["lowpass_speed_m_s"] for r in refused] == [2.2]
    assert figure.read_bytes().startswith(b"\x89PNG")
    assert np.isfinite(report["held_back_half"]["mmdi_calibrated"]["5"]["pixel_r"])
