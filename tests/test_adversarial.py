"""Issue 14's adversarial cases that are not rows of the "Bad inputs" table: outputs that would
destroy inputs, hostile strings, corrupt and extreme files, environment faults. Each goes
through the real command line and checks the project rule (``fails``: exit 2, one line,
nothing under ``tmp_path`` changed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from test_bad_inputs import fails, sample_store
from test_invert_cli import save_nifti, volume_xyz

from dime_pipeline.inversion import wave_images


def offsets_nifti(path: Path) -> Path:
    return save_nifti(path, wave_images(volume_xyz(), n_offsets=4))


# --- an output that would overwrite an input -------------------------------------------------


@pytest.mark.parametrize("spelling", ["same", "symlink", "hardlink", "gz-twin"])
def test_invert_never_overwrites_its_input(tmp_path, capsys, spelling):
    data = offsets_nifti(tmp_path / "self.nii")
    out = {
        "same": data,
        "symlink": tmp_path / "link.nii",
        "hardlink": tmp_path / "hard.nii",
        "gz-twin": tmp_path / "self.nii.gz",
    }[spelling]
    if spelling == "symlink":
        out.symlink_to(data)
    elif spelling == "hardlink":
        os.link(data, out)
    line = fails(
        tmp_path, capsys, "invert", data, "--method", "di", "--frequency-hz", 60, "--out", out
    )
    assert "would overwrite the input" in line


def test_invert_never_overwrites_its_mask(tmp_path, capsys):
    data = offsets_nifti(tmp_path / "data.nii")
    mask = tmp_path / "mask.nii.gz"
    save_nifti(mask, np.ones((56, 44, 2)))
    line = fails(
        tmp_path,
        capsys,
        "invert",
        data,
        "--method",
        "di",
        "--frequency-hz",
        60,
        "--mask",
        mask,
        "--out",
        mask,
    )
    assert "would overwrite the input" in line


def test_acquire_never_writes_into_or_over_its_store(tmp_path, capsys):
    store = sample_store(tmp_path)
    link = tmp_path / "alias.zarr"
    link.symlink_to(store)
    for out in (link, store / "inner.zarr"):
        line = fails(tmp_path, capsys, "acquire", store, "--seed", 1, "--out", out)
        assert "would overwrite the input" in line


def test_summarize_never_overwrites_a_store(tmp_path, capsys):
    store = sample_store(tmp_path)
    line = fails(tmp_path, capsys, "summarize", store, "--out", store)
    assert "would overwrite the input" in line
