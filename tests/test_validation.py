"""Validation of what the pipeline reads (issue 14): configs with NaN/inf numbers or duplicate
keys, sample stores and packs with out-of-range attributes or wrong dtypes, and studies too big
for the machine's memory. Every case goes through the real command line where there is one and
checks the project rule with ``fails``: exit 2, one stderr line naming the problem, nothing
written."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import yaml
import zarr
from test_bad_inputs import fails, sample_command, sample_store, set_attr
from test_dime import make_pack

from dime_pipeline import config as config_module
from dime_pipeline.config import (
    DEFAULT_CONFIG,
    load_config,
    read_yaml_mapping,
    validate_config,
)
from dime_pipeline.datasets import Pack, write_pack
from dime_pipeline.dime.training import load_training_config
from dime_pipeline.errors import UserError
from dime_pipeline.store import consolidate, read_sample


def write_yaml(path, text: str):
    path.write_text(text)
    return path


# --- 1. NaN and inf in a config ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("mesh: {elements_per_wavelength: .nan}", "mesh.elements_per_wavelength"),
        ("mesh: {elements_per_wavelength: .inf}", "mesh.elements_per_wavelength"),
        ("frequency_hz: {min: 50, max: .inf}", "frequency_hz.max"),
        ("materials: {density_kg_m3: .inf}", "materials.density_kg_m3"),
        ("acquisition: {snr: [null, .inf]}", "acquisition.snr.1"),
        ("acquisition: {wrap_rad: .nan}", "acquisition.wrap_rad"),
        ("heterogeneous: {shape_weights: {round: .nan}}", "heterogeneous.shape_weights.round"),
        (
            "liver: {fat: {tissue: {modulus_kpa: {min: 1, max: .inf},"
            " loss_ratio: {min: 0, max: 1}}}}",
            "liver.fat.tissue.modulus_kpa.max",
        ),
        ("dime: {training: {optim: {lr: .nan}}}", "dime.training.optim.lr"),
    ],
)
def test_non_finite_config_numbers_are_refused_by_phantom(tmp_path, capsys, text, key):
    config = write_yaml(tmp_path / "config.yaml", text + "\n")
    argv = ["phantom", "homogeneous", "--seed", 1, "--config", config, "--out", tmp_path / "ph"]
    line = fails(tmp_path, capsys, *argv)
    assert f"config {config} key '{key}': Input should be a finite number" in line


def test_null_keeps_its_meaning():
    """null is noise-free (snr) / no wrapping (wrap_rad); a training key has no null: leaving
    it out keeps its default."""
    config = validate_config({"acquisition": {"snr": [None, 5.0], "wrap_rad": None}})
    assert config.acquisition.snr == [None, 5.0] and config.acquisition.wrap_rad is None
    with pytest.raises(UserError, match=r"dime\.training\.optim\.lr"):
        validate_config({"dime": {"training": {"optim": {"lr": None}}}})


# --- 2. duplicate keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        (
            "seed: 1\nfrequency_hz: {min: 50, max: 60}\nfrequency_hz: {min: 1, max: 2}\n",
            "frequency_hz",
            3,
        ),
        ("grid:\n  shape: [32, 32]\n  voxel_size_mm: 2\n  shape: [64, 64]\n", "grid.shape", 4),
        ("acquisition:\n  snr: [null, {a: 1, a: 2}]\n", "acquisition.snr.1.a", 2),
    ],
)
def test_duplicate_config_keys_are_refused(tmp_path, capsys, text, key, line):
    config = write_yaml(tmp_path / "config.yaml", text)
    message = fails(tmp_path, capsys, "config", "--config", config, "--out", tmp_path / "out.yaml")
    assert f"config {config} is not valid YAML: duplicate key '{key}' (line {line}," in message


def test_duplicate_keys_in_the_training_config(tmp_path):
    path = write_yaml(tmp_path / "train.yaml", "optim:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(UserError, match=r"training config .* duplicate key 'optim.lr' \(line 3"):
        load_training_config(path)


def test_merge_keys_and_the_shipped_configs_still_read(tmp_path):
    path = write_yaml(
        tmp_path / "c.yaml",
        "base: &b {min: 50, max: 60}\nfrequency_hz: {<<: *b, max: 70}\nlist: [{k: 1}, {k: 2}]\n",
    )
    assert read_yaml_mapping(path, "config")["frequency_hz"] == {"min": 50, "max": 70}
    for name in ("config.yaml", "paper.yaml", "pretrained.yaml", "pretrained-v1.yaml"):
        load_config(DEFAULT_CONFIG.parent / name)


# --- 3. sample stores and packs are validated on read ------------------------------------------


def retype(store, name: str, convert) -> None:
    """Rewrite array ``name`` of ``store`` with ``convert(data)`` (another dtype or shape)."""
    group = zarr.open_group(store, mode="r+")
    data = convert(np.asarray(group[name][...]))
    del group[name]
    group.create_array(name, data=data, chunks=data.shape, config={"write_empty_chunks": True})
    consolidate(store)


ATTRIBUTE_DAMAGE = [
    ("frequency_hz", float("nan"), "a finite number > 0"),
    ("frequency_hz", -60.0, "a finite number > 0"),
    ("frequency_hz", "60", "a finite number > 0"),
    ("voxel_size_m", [0.0, 1.5e-3], "a list of 2 finite numbers > 0"),
    ("voxel_size_m", 1.5e-3, "a list of 2 finite numbers > 0"),
    ("density_kg_m3", float("inf"), "a finite number > 0"),
    ("family", "inclusion", "one of homogeneous, heterogeneous, liver"),
    ("seed", -1, "an integer >= 0"),
    ("seed", 2.5, "an integer >= 0"),
    ("components", ["x", "x", "z"], "3 distinct names of x, y, z"),
    ("dim", 3, "2"),
]


@pytest.mark.parametrize("command", ["acquire", "summarize", "pack"])
@pytest.mark.parametrize(("key", "value", "wanted"), ATTRIBUTE_DAMAGE)
def test_bad_store_attribute(tmp_path, capsys, command, key, value, wanted):
    store = sample_store(tmp_path, acquired=command == "pack")
    set_attr(store, key, value)
    line = fails(tmp_path, capsys, *sample_command(command, store, tmp_path))
    assert f"{store}: not a valid sample store (attribute '{key}' must be {wanted}" in line


ARRAY_DAMAGE = {
    "float-mask": ("mask", lambda a: a.astype(np.float64), "array 'mask' must be bool"),
    "real-displacement": (
        "displacement",
        lambda a: a.real.copy(),
        "array 'displacement' must be complex, not float64",
    ),
    "real-modulus": ("modulus", np.abs, "array 'modulus' must be complex"),
    "float-labels": ("labels", lambda a: a.astype(np.float32), "array 'labels' must be integer"),
    "real-measured": ("measured", lambda a: a.real.copy(), "array 'measured' must be complex"),
    "short-mask": ("mask", lambda a: a[:-1], "array 'mask' has shape"),
    "short-measured": ("measured", lambda a: a[:2], "array 'measured' has shape"),
}


@pytest.mark.parametrize(
    ("damage", "command"),
    [
        (damage, command)
        for damage, (name, _, _) in ARRAY_DAMAGE.items()
        for command in ("acquire", "summarize", "pack")
        if name != "measured" or command == "pack"  # only acquired stores have it
    ],
)
def test_bad_store_array(tmp_path, capsys, damage, command):
    name, convert, phrase = ARRAY_DAMAGE[damage]
    store = sample_store(tmp_path, acquired=command == "pack")
    retype(store, name, convert)
    line = fails(tmp_path, capsys, *sample_command(command, store, tmp_path))
    assert f"{store}: not a valid sample store ({phrase}" in line


def test_bad_acquisition_attribute(tmp_path, capsys):
    store = sample_store(tmp_path, acquired=True)
    acquisition = dict(zarr.open_group(store, mode="r").attrs["acquisition"])
    set_attr(store, "acquisition", {**acquisition, "snr": float("nan")})
    line = fails(tmp_path, capsys, *sample_command("pack", store, tmp_path))
    assert "attribute 'acquisition' must be a mapping with seed" in line


def test_a_valid_store_still_reads(tmp_path):
    assert read_sample(sample_store(tmp_path, acquired=True)).measured is not None


PACK_DAMAGE = {
    "frequency_hz": (lambda a: a.__setitem__("frequency_hz", a["frequency_hz"] * np.nan), "nan"),
    "density_kg_m3": (lambda a: a.__setitem__("density_kg_m3", -a["density_kg_m3"]), "-1000"),
    "voxel_size_m": (lambda a: a["voxel_size_m"].__setitem__((1, 0), 0), "[0.0, "),
    "snr": (lambda a: a.__setitem__("snr", np.full(len(a["snr"]), np.nan)), "nan"),
    "family": (lambda a: a.__setitem__("family", a["family"] + 5), "5"),
    "seed": (lambda a: a.__setitem__("seed", -a["seed"] - 1), "-1"),
}


@pytest.mark.parametrize("column", PACK_DAMAGE)
def test_bad_pack_column(tmp_path, column):
    good = Pack(make_pack(tmp_path / "good.zarr", n=4))
    arrays = {name: good.column(name) for name in good.arrays}
    damage, shown = PACK_DAMAGE[column]
    damage(arrays)
    write_pack(tmp_path / "bad.zarr", arrays, good.attrs)
    with pytest.raises(UserError, match=rf"not a valid packed dataset \(column '{column}'") as info:
        Pack(tmp_path / "bad.zarr")
    assert f"holds {shown}" in str(info.value)


def test_bad_pack_through_invert(tmp_path, capsys):
    good = Pack(make_pack(tmp_path / "good.zarr", n=4))
    arrays = {name: good.column(name) for name in good.arrays}
    arrays["frequency_hz"][2] = np.nan
    pack = tmp_path / "bad.zarr"
    write_pack(pack, arrays, good.attrs)
    line = fails(tmp_path, capsys, "invert", pack, "--method", "di", "--out", tmp_path / "e.zarr")
    assert f"{pack}: not a valid packed dataset (column 'frequency_hz'" in line
    assert "1 row(s) are not, row 2 holds nan" in line


def test_pack_with_a_real_field_is_refused(tmp_path):
    path = make_pack(tmp_path / "p.zarr", n=2)
    group = zarr.open_group(path, mode="r+")
    data = np.asarray(group["measured"][...]).real
    del group["measured"]
    group.create_array("measured", data=data, chunks=(1, *data.shape[1:]))
    consolidate(path)
    with pytest.raises(UserError, match="array 'measured' must be complex64, not float32"):
        Pack(path)


# --- 4. studies too big for memory -------------------------------------------------------------


@pytest.fixture
def memory_16gb(monkeypatch):
    """Estimates against a 16 GB machine, whatever this one has."""
    monkeypatch.setenv(config_module.MEMORY_ENV, "16")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("grid: {shape: [100000, 100000]}", "grid.shape"),
        ("grid: {shape: [4096, 4096]}", "grid.shape"),
        ("mesh: {elements_per_wavelength: 1e6}", "mesh.elements_per_wavelength"),
        ("mesh: {elements_per_wavelength: 200}", "mesh.elements_per_wavelength"),
        ("{dim: 3, grid: {shape: [512, 512], slices: 64}}", "grid.shape"),
    ],
)
def test_a_solve_that_cannot_fit_is_refused_before_the_phantom(
    tmp_path, capsys, memory_16gb, text, key
):
    config = write_yaml(tmp_path / "config.yaml", text + "\n")
    argv = ["phantom", "homogeneous", "--seed", 1, "--config", config, "--out", tmp_path / "ph"]
    line = fails(tmp_path, capsys, *argv)
    assert f"config {config} key '{key}': one solve needs about " in line
    assert "more than the 16 GB of $DIME_MEMORY_GB" in line


def test_too_many_samples_are_refused_with_how_many_fit(tmp_path, capsys, memory_16gb):
    config = write_yaml(tmp_path / "config.yaml", "samples: {homogeneous: 1000000}\n")
    line = fails(tmp_path, capsys, "config", "--config", config, "--out", tmp_path / "c.yaml")
    assert f"config {config} key 'samples': planning 1000000 samples needs about 72.1 GB" in line
    fit = int((16e9 - config_module.PLAN_BASE_BYTES) / (4 * config_module.PLAN_JOB_BYTES))
    assert line.endswith(f"at most {fit} samples fit")
    validate_config({"samples": {"homogeneous": fit}})  # the number it names does fit


def test_shipped_studies_fit_16gb(memory_16gb):
    for name in ("config.yaml", "paper.yaml", "pretrained.yaml", "pretrained-v1.yaml"):
        load_config(DEFAULT_CONFIG.parent / name)
    validate_config({"dim": 3, "samples": {"liver": 2, "heterogeneous": 1}})


def test_memory_override_must_be_a_number(monkeypatch):
    monkeypatch.setenv(config_module.MEMORY_ENV, "lots")
    with pytest.raises(UserError, match=r"\$DIME_MEMORY_GB must be a number of GB > 0"):
        validate_config({})


def test_the_workflow_refuses_at_parse_time(repo, tmp_path, tool_env):
    (tmp_path / "config").mkdir()
    raw = {"samples": {"homogeneous": 1000000}}
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(raw))
    env = {**tool_env, config_module.MEMORY_ENV: "16"}
    command = ["snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(tmp_path)]
    result = subprocess.run([*command, "-n"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    assert "key 'samples': planning 1000000 samples" in result.stderr
    assert not (tmp_path / "results").exists()
