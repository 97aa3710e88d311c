"""Issue 14's adversarial cases that are not rows of the "Bad inputs" table: outputs that would
destroy inputs, hostile strings, corrupt and extreme files, environment faults. Each goes
through the real command line and checks the project rule (``fails``: exit 2, one line,
nothing under ``tmp_path`` changed)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from test_bad_inputs import TINY_ARGS, fails, sample_store
from test_dime import make_pack
from test_invert_cli import save_nifti, volume_xyz
from test_packing import acquired_store
from test_workflow import TINY
from test_workflow import _snakemake as snakemake

from dime_pipeline.cli import main
from dime_pipeline.config import dump_config, validate_config
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
    assert "would overwrite the input" in line or "is a symbolic link" in line


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
        assert "would overwrite the input" in line or "is a symbolic link" in line


def test_summarize_never_overwrites_a_store(tmp_path, capsys):
    store = sample_store(tmp_path)
    line = fails(tmp_path, capsys, "summarize", store, "--out", store)
    assert "would overwrite the input" in line


# --- config strings never reach a shell unquoted ---------------------------------------------


def test_a_hostile_config_string_is_one_argument_not_a_command(repo, tmp_path, tool_env):
    """A free-form path reaches `simulate` as one quoted word: the `touch` inside never runs
    and the space does not split it."""
    (tmp_path / "config").mkdir()
    cache = tmp_path / "jit cache; touch PWNED #"
    config = {**TINY, "samples": {"homogeneous": 1}, "solver": {"jit_cache": str(cache)}}
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    store = "results/samples/homogeneous/0000.zarr"
    result = snakemake(repo, tmp_path, tool_env, "--cores", "2", store)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / store).is_dir() and cache.is_dir()
    assert not list(tmp_path.rglob("PWNED"))


def test_an_enumeration_is_checked_as_one(repo, tmp_path, tool_env):
    (tmp_path / "config").mkdir()
    hostile = {"trainer": {"precision": "32-true; touch PWNED #"}}
    config = {**TINY, "dime": {"model": "trained", "training": hostile}}
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(repo, tmp_path, tool_env, "--cores", "1")
    assert result.returncode != 0
    assert "config key 'dime.training.trainer.precision': Input should be" in result.stderr
    assert not (tmp_path / "results").exists() and not list(tmp_path.rglob("PWNED"))


def test_a_bad_training_setting_is_refused_when_the_workflow_starts(
    repo, tmp_path, tool_env, capsys
):
    """The workflow's dime.training is the training command's own typed model: a patch of 300
    px is refused before any job, in one line naming the key, as `train --config` refuses it."""
    (tmp_path / "config").mkdir()
    config = {**TINY, "dime": {"model": "trained", "training": {"network": {"patch_size": 300}}}}
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(repo, tmp_path, tool_env, "--cores", "1")
    assert result.returncode != 0
    line = "config key 'dime.training.network.patch_size': Input should be less than or equal"
    assert line in result.stderr
    assert not (tmp_path / "results").exists()
    (tmp_path / "t.yaml").write_text("network: {patch_size: 300}\n")
    packs = [tmp_path / "train.zarr", tmp_path / "val.zarr"]  # never read: the config fails first
    for pack in packs:
        pack.mkdir()
    argv = ["train", "--train", str(packs[0]), "--val", str(packs[1]), "--out-dir"]
    assert main([*argv, str(tmp_path / "o"), "--config", str(tmp_path / "t.yaml")]) == 2
    assert "key 'network.patch_size': Input should be less than or equal" in capsys.readouterr().err


# --- corrupt and extreme user data -----------------------------------------------------------

INVERT = ("--method", "di", "--frequency-hz", 60)


def test_a_flipped_byte_in_a_gzipped_nifti_is_refused(tmp_path, capsys):
    data = offsets_nifti(tmp_path / "waves.nii.gz")
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x10  # inside the deflate stream, far from the header
    data.write_bytes(bytes(raw))
    line = fails(tmp_path, capsys, "invert", data, *INVERT, "--out", tmp_path / "maps.nii")
    assert "not a readable NIfTI file" in line


@pytest.mark.parametrize("scale", [1e200, 1e-200])
def test_a_field_near_the_ends_of_the_float_range_inverts_like_any_other(tmp_path, scale):
    images = wave_images(volume_xyz(), n_offsets=4)
    plain = save_nifti(tmp_path / "plain.nii", images)
    extreme = save_nifti(tmp_path / "extreme.nii", images * scale)
    for source in (plain, extreme):
        assert main(["invert", str(source), *map(str, INVERT), "--out", f"{source}.out.nii"]) == 0
    want = nib.load(f"{plain}.out.nii").get_fdata()
    got = nib.load(f"{extreme}.out.nii").get_fdata()
    assert np.isfinite(got).all()
    assert np.allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("option", "value", "phrase"),
    [
        ("--frequency-hz", "1e200", "--frequency-hz 1e+200 Hz is outside 1-10000 Hz"),
        ("--frequency-hz", "0.06", "--frequency-hz 0.06 Hz is outside 1-10000 Hz"),
        ("--voxel-size-mm", "0.0014", "--voxel-size-mm 0.0014 mm is outside 0.01-100 mm"),
        ("--voxel-size-mm", "1e20", "--voxel-size-mm 1e+20 mm is outside 0.01-100 mm"),
    ],
)
def test_an_impossible_frequency_or_voxel_size_is_a_unit_slip(
    tmp_path, capsys, option, value, phrase
):
    data = offsets_nifti(tmp_path / "waves.nii")
    argv = ["--method", "di", "--frequency-hz", "60", option, value]
    line = fails(tmp_path, capsys, "invert", data, *argv, "--out", tmp_path / "m.nii")
    assert phrase in line


@pytest.mark.parametrize("pixdim", [1e20, 1e-30])
def test_an_impossible_pixdim_is_refused(tmp_path, capsys, pixdim):
    image = nib.load(offsets_nifti(tmp_path / "waves.nii"))
    image.header.set_zooms((pixdim, pixdim, 5.0, 1.0))
    nib.save(nib.Nifti1Image(image.get_fdata(), image.affine, image.header), tmp_path / "w.nii")
    line = fails(
        tmp_path, capsys, "invert", tmp_path / "w.nii", *INVERT, "--out", tmp_path / "m.nii"
    )
    assert "voxel size" in line and "is outside 0.01-100 mm" in line


def test_an_unusual_frequency_is_a_warning_not_an_error(tmp_path, caplog):
    data = offsets_nifti(tmp_path / "waves.nii")
    argv = ["invert", str(data), "--method", "di", "--frequency-hz", "2000"]
    assert main([*argv, "--out", str(tmp_path / "m.nii")]) == 0
    assert "is unusual for MRE" in caplog.text


def test_a_mask_of_strings_is_refused(tmp_path, capsys):
    data = offsets_nifti(tmp_path / "waves.nii")
    mask = tmp_path / "mask.npy"
    np.save(mask, np.full((56, 44, 2), "yes"))
    argv = [*INVERT, "--mask", mask, "--out", tmp_path / "m.nii"]
    line = fails(tmp_path, capsys, "invert", data, *argv)
    assert "a mask holds numbers or booleans, not <U3" in line


def test_an_npy_header_that_promises_more_than_the_file_holds(tmp_path, capsys):
    """A header claiming 715 GiB over 64 KiB of data: refused before any allocation."""
    data = tmp_path / "field.npy"
    header = {"descr": "<c16", "fortran_order": False, "shape": (219_000, 219_000)}
    with open(data, "wb") as stream:
        np.lib.format.write_array_header_1_0(stream, header)
        stream.write(np.ones(4096, complex).tobytes())
    argv = ["--method", "di", "--frequency-hz", 60, "--voxel-size-mm", 1.5]
    line = fails(tmp_path, capsys, "invert", data, *argv, "--out", tmp_path / "m.nii")
    assert "its header promises 7.674e+11 bytes of complex128 (219000, 219000)" in line


def test_non_finite_maps_are_never_written(tmp_path):
    from dime_pipeline.errors import UserError
    from dime_pipeline.inversion.result import InversionResult
    from dime_pipeline.userdata import load_user_data, output_maps

    volume = load_user_data(offsets_nifti(tmp_path / "waves.nii"), frequency_hz=60.0)
    shape = volume.mask.shape
    modulus = np.full(shape, 3e3 + 0j)
    modulus[0, 5, 5] = np.inf
    valid = np.ones(shape, bool)
    result = InversionResult(modulus, np.ones(shape), valid, valid, 1000.0)
    with pytest.raises(UserError, match="non-finite values at 1 voxels"):
        output_maps(volume, result)


# --- the environment: disk full, unwritable places, shared caches, damaged meshes ------------


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("adversarial_phantom")
    config = folder / "config.yaml"
    config.write_text(dump_config(validate_config({"seed": 3, "grid": {"shape": [24, 24]}})))
    argv = ["phantom", "homogeneous", "--seed", "5", "--config", str(config), "--no-preview"]
    assert main([*argv, "--out", str(folder / "p")]) == 0
    return folder / "p"


def _limit_file_size() -> None:
    """A full disk, as far as the writer can tell: a file cannot grow past 4 KiB (EFBIG)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 12, 1 << 12))


def test_a_full_disk_during_pack_is_one_line_and_leaves_nothing(tmp_path, tool_env):
    sources = tmp_path / "acquired"
    stores = [acquired_store(sources, "homogeneous", seed, None) for seed in range(4)]
    out = tmp_path / "datasets"
    argv = ["--quiet", "pack", *map(str, stores), "--out-dir", str(out), "--seed", "1"]
    argv += ["--fractions", "0.5", "0.25", "0.25"]
    before = {p: p.stat().st_size for p in sources.rglob("*") if p.is_file()}
    result = subprocess.run(
        [sys.executable, "-m", "dime_pipeline.cli", *argv],
        capture_output=True,
        text=True,
        env=tool_env,
        preexec_fn=_limit_file_size,
        timeout=300,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("dime-pipeline pack: error: ") and "too large" in lines[0]
    assert not out.exists() or not list(out.iterdir())  # no pack, whole or partial
    assert {p: p.stat().st_size for p in sources.rglob("*") if p.is_file()} == before


def test_an_unwritable_destination_fails_before_the_solve(tmp_path, capsys, phantom, jit_cache):
    line = fails(
        tmp_path, capsys, "simulate", phantom, "--jit-cache", jit_cache, "--out", "/proc/x.zarr"
    )
    assert "cannot write in /proc" in line


def test_an_output_that_is_a_symbolic_link_is_refused(tmp_path, capsys, phantom, jit_cache):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out.zarr").symlink_to(tmp_path / "elsewhere")
    line = fails(
        tmp_path,
        capsys,
        "simulate",
        phantom,
        "--jit-cache",
        jit_cache,
        "--out",
        tmp_path / "out.zarr",
    )
    assert "is a symbolic link" in line


def test_a_jit_cache_anyone_can_write_is_refused(tmp_path, capsys, phantom):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    line = fails(
        tmp_path, capsys, "simulate", phantom, "--jit-cache", shared, "--out", tmp_path / "s.zarr"
    )
    assert "is writable by every user" in line


def simulate_fails(tmp_path: Path, capsys, phantom_dir: Path, jit_cache: Path) -> str:
    argv = ["simulate", phantom_dir, "--jit-cache", jit_cache, "--out", tmp_path / "s.zarr"]
    return fails(tmp_path, capsys, *argv)


def test_a_garbage_mesh_is_one_line(tmp_path, capsys, phantom, jit_cache):
    damaged = tmp_path / "phantom"
    shutil.copytree(phantom, damaged)
    (damaged / "mesh.msh").write_bytes(np.random.default_rng(1).bytes(3000))
    line = simulate_fails(tmp_path, capsys, damaged, jit_cache)
    assert "not a readable gmsh mesh" in line


def test_a_blank_line_in_an_argument_file_is_no_argument(tmp_path):
    store = sample_store(tmp_path)
    listing = tmp_path / "stores.txt"
    listing.write_text(f"\n{store}\n\n   \n")
    assert main(["summarize", f"@{listing}", "--out", str(tmp_path / "summary.json")]) == 0
    assert len(json.loads((tmp_path / "summary.json").read_text())) == 1


@pytest.mark.parametrize(
    ("option", "phrase"),
    [
        (["--snr", "1e308"], "SNR 1e+308 is above 1e+06: that is noise-free"),
        (["--offsets", "1000000000"], "offsets must be 0 (none) or 3-64 (got 1000000000)"),
    ],
)
def test_acquisition_numbers_beyond_reason(tmp_path, capsys, option, phrase):
    store = sample_store(tmp_path)
    argv = ["acquire", store, "--seed", 1, *option, "--out", tmp_path / "a.zarr"]
    assert phrase in fails(tmp_path, capsys, *argv)


def test_a_store_output_onto_an_existing_file_keeps_the_file(tmp_path, capsys):
    store = sample_store(tmp_path)
    (tmp_path / "notes.zarr").write_text("the user's own file")
    line = fails(tmp_path, capsys, "acquire", store, "--seed", 1, "--out", tmp_path / "notes.zarr")
    assert "is a file, not an output folder" in line


def test_a_phantom_description_with_nan_is_refused(tmp_path, capsys, phantom, jit_cache):
    damaged = tmp_path / "phantom"
    shutil.copytree(phantom, damaged)
    spec = damaged / "phantom.json"
    text = spec.read_text()
    frequency = json.loads(text)["frequency_hz"]
    spec.write_text(text.replace(f'"frequency_hz": {frequency}', '"frequency_hz": NaN'))
    line = simulate_fails(tmp_path, capsys, damaged, jit_cache)
    assert "invalid phantom description (NaN is not a number a phantom can hold)" in line


def test_a_full_disk_during_training_is_one_line(tmp_path, tool_env):
    packs = [make_pack(tmp_path / f"{split}.zarr") for split in ("train", "val")]
    argv = ["train", "--train", str(packs[0]), "--val", str(packs[1]), "--out-dir"]
    argv += [str(tmp_path / "run"), "--max-epochs", "1", "--accelerator", "cpu", *TINY_ARGS]
    argv += ["--num-workers", "0", "--crops-per-epoch", "16"]
    result = subprocess.run(
        [sys.executable, "-m", "dime_pipeline.cli", "--quiet", *argv],
        capture_output=True,
        text=True,
        env=tool_env,
        preexec_fn=_limit_file_size,
        timeout=300,
    )
    # (Lightning's own warnings may come first: a 1-batch epoch is shorter than its log interval)
    lines = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("dime-pipeline train: error: ")
    assert "cannot write it" in lines[0] and "disk full?" in lines[0]
    assert not (tmp_path / "run" / "model.pt").exists()
    assert not list((tmp_path / "run").rglob(".*tmp-*"))
