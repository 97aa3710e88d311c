"""The wavelength sweep (``evaluation.wavelength``, ``dime-pipeline wavelength-sweep``): exact
scenes at the requested sampling, the physics DI must get right on them, the command's outputs and
errors, and the report section built from them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dime_pipeline.cli import main
from dime_pipeline.evaluation import wavelength
from dime_pipeline.inversion.methods import inverter


def test_scene_has_the_requested_sampling_and_regions():
    case = wavelength.scene(px=20, diameter=2.0)
    background_wavelength = 2 * math.pi / (2 * math.pi * 60 * np.sqrt(1000 / (2000 + 200j))).real
    assert case["voxel_m"] == pytest.approx(background_wavelength / 20)
    assert case["fields"].shape == (3, 120, 120)  # max(6, 2 + 3) wavelengths
    inside = case["truth"] > 3000
    diameter_px = 2 * np.sqrt(inside.sum() / np.pi)
    assert diameter_px == pytest.approx(40, rel=0.05)  # 2 wavelengths of 20 px
    assert not (case["background"] & inside).any() and (case["inclusion"] <= inside).all()
    assert wavelength.scene(px=100, diameter=1.0)["fields"].shape[-1] == wavelength.MAX_SIDE


def test_di_is_exact_inside_a_well_sampled_inclusion_and_the_sweep_scores_every_level():
    """DI is exact wherever the medium is locally homogeneous: at 40 px per wavelength the
    inclusion's median (away from its edge) and the background's are within 0.1 % (measured
    2e-7 and 4e-6); MMDI's band-pass smooths the 1-wavelength inclusion (about −45 %)."""
    inverters = {m: inverter(m)[0] for m in ("mmdi", "di")}
    document = wavelength.sweep(inverters, px_levels=(12, 40), diameters=(1.0,))
    assert document["px_per_wavelength"] == [12.0, 40.0]
    di = document["methods"]["di"]["1"]
    assert [row["px"] for row in di] == [12.0, 40.0]
    assert abs(di[1]["inclusion_bias"]) < 1e-3 and abs(di[1]["background_bias"]) < 1e-3
    for row in document["methods"]["mmdi"]["1"]:
        assert abs(row["background_bias"]) < 0.02 and row["pixel_r"] > 0.8


def test_command_writes_the_document_and_figure_and_refuses_bad_levels(tmp_path, capsys):
    out, figure = tmp_path / "sweep.json", tmp_path / "sweep.png"
    argv = ["--quiet", "wavelength-sweep", "--methods", "di", "--px", "10", "--diameters", "1"]
    assert main([*argv, "--out", str(out), "--figure", str(figure)]) == 0
    document = json.loads(out.read_text())
    assert list(document["methods"]) == ["di"] and figure.read_bytes().startswith(b"\x89PNG")
    assert main([*argv[:4], "--px", "1000", "--out", str(out)]) == 2
    assert "--px must lie in 3–200" in capsys.readouterr().err
    assert main([*argv, "--model", str(tmp_path / "m.pt"), "--out", str(out)]) == 2
    assert "--model is for the dime method only" in capsys.readouterr().err


def test_the_report_section_tabulates_the_sweep(tmp_path):
    """(The workflow test builds a whole report with the sweep's real outputs.)"""
    from dime_pipeline.evaluation.report import ReportInputs
    from dime_pipeline.evaluation.report_sections import _wavelength_blocks

    document = {
        "px_per_wavelength": [10.0, 30.0],
        "diameters_wavelengths": [1.0],
        "scene": {"contrast": 3.0},
        "methods": {
            "mmdi": {
                "1": [
                    {"px": 10.0, "pixel_r": 0.85, "inclusion_bias": -0.45},
                    {"px": 30.0, "pixel_r": 0.86, "inclusion_bias": None},
                ]
            }
        },
    }
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 8
    blocks = _wavelength_blocks(ReportInputs({}, [], tmp_path, wavelength=(document, png)))
    assert [b["type"] for b in blocks] == ["p", "figure", "h3", "table"]
    table = blocks[-1]
    assert table["header"] == ["method", "10 px/λ", "30 px/λ"]
    assert [c["text"] for c in table["rows"][0]["cells"]] == ["0.85 / -45 %", "0.86 / – %"]
