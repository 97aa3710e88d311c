"""Every row of the "Bad inputs" table (docs/fault-tolerance.md), through the real command line.

Each case builds a small real input (Zarr sample stores, packs and estimates stores, NIfTI,
.npy, YAML, model files and checkpoints), damages it the way a disk, a copy or a user would,
and checks the project rule: exit status 2, exactly one stderr line
``dime-pipeline COMMAND: error: …`` naming the problem, and nothing written or changed under
``tmp_path`` (outputs that existed before are left as they were). No FEM solve, no training
beyond one tiny epoch shared by the resume cases.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import zarr
from test_dime import TINY, make_pack
from test_invert_cli import AFFINE, save_nifti, volume_xyz
from test_packing import acquired_store, simulated

from dime_pipeline.cli import main
from dime_pipeline.dime import DimeUNet, save_model
from dime_pipeline.inversion import wave_images
from dime_pipeline.inversion.packs import invert_pack
from dime_pipeline.store import consolidate, write_sample

SHAPE = (16, 16)
TINY_ARGS = ["--patch-size", "16", "--depth", "2", "--width", "8"]


# --- helpers ------------------------------------------------------------------------------------


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for folders): equal before and after a
    failed command means nothing was created, removed or changed."""
    return {
        str(path.relative_to(root)): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


def fails(root: Path, capsys: pytest.CaptureFixture[str], *argv: object) -> str:
    """Run ``dime-pipeline ARGV``; assert status 2, one stderr line, ``root`` untouched."""
    before = tree(root)
    command = next(str(a) for a in argv if not str(a).startswith("--"))
    status = main([str(a) for a in argv])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"dime-pipeline {command}: error: "), lines[0]
    assert tree(root) == before
    print(lines[0])  # `pytest -rP` lists every message (the "Bad inputs" table is made from them)
    return lines[0]


def chunk_files(store: Path, array: str) -> list[Path]:
    return sorted(p for p in (store / array).rglob("*") if p.is_file() and p.name != "zarr.json")


def set_attr(store: Path, key: str, value: object) -> None:
    zarr.open_group(store, mode="r+").attrs[key] = value
    consolidate(store)


def garbage(path: Path) -> None:
    """Overwrite a file with random bytes of the same length (a bit-rotted copy)."""
    path.write_bytes(np.random.default_rng(0).bytes(max(path.stat().st_size, 64)))


def halve(path: Path) -> None:
    """Cut a file in half (a copy that stopped early)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def truncated(path: Path) -> Path:
    halve(path)
    return path


# --- damage to a Zarr store ---------------------------------------------------------------------

DAMAGE: dict[str, Callable[[Path, str], None]] = {
    "garbage-zarr-json": lambda store, array: garbage(store / "zarr.json"),
    "garbage-chunk": lambda store, array: garbage(chunk_files(store, array)[-1]),
    "half-chunk": lambda store, array: halve(chunk_files(store, array)[-1]),
    "missing-chunk": lambda store, array: chunk_files(store, array)[-1].unlink(),
    "missing-array": lambda store, array: shutil.rmtree(store / array),
}
READ_PROBLEM = {  # what the message says after "not a readable <kind> ("
    "garbage-zarr-json": "'utf-8' codec can't decode",
    "garbage-chunk": "Zstd decompression error",
    "half-chunk": "Zstd decompression error",
    "missing-chunk": "chunk files",
    "missing-array": "is missing",
}


def sample_store(directory: Path, acquired: bool = False) -> Path:
    if acquired:
        return acquired_store(directory, "homogeneous", 3, None, shape=SHAPE)
    path = directory / "sample.zarr"
    write_sample(path, simulated("homogeneous", 3, shape=SHAPE))
    return path


def sample_command(command: str, store: Path, tmp_path: Path) -> list[object]:
    """argv of ``command`` reading ``store``; its output exists already (it must survive)."""
    out = {
        "acquire": tmp_path / "acquired.zarr",
        "summarize": tmp_path / "summary.json",
        "invert": tmp_path / "g.nii.gz",
        "pack": tmp_path / "packs",
    }[command]
    if out.suffix in (".json", ".gz"):
        out.write_text("an earlier result\n")
    else:
        out.mkdir()
        (out / "earlier.txt").write_text("an earlier result\n")
    return {
        "acquire": ["acquire", store, "--out", out, "--seed", 1],
        "summarize": ["summarize", store, "--out", out],
        "invert": ["invert", store, "--method", "di", "--out", out],
        "pack": ["pack", store, "--out-dir", out, "--seed", 1],
    }[command]


@pytest.mark.parametrize(
    ("damage", "array", "command"),
    [
        ("garbage-zarr-json", "", "acquire"),
        ("garbage-chunk", "displacement", "summarize"),
        ("garbage-chunk", "measured", "pack"),
        ("half-chunk", "displacement", "acquire"),
        ("half-chunk", "modulus", "invert"),
        ("missing-chunk", "displacement", "invert"),
        ("missing-chunk", "mask", "summarize"),
        ("missing-array", "modulus", "acquire"),
        ("missing-array", "measured", "pack"),
    ],
    ids=lambda value: value or "group",
)
def test_damaged_sample_store(tmp_path, capsys, damage, array, command):
    store = sample_store(tmp_path, acquired=command == "pack")
    DAMAGE[damage](store, array)
    line = fails(tmp_path, capsys, *sample_command(command, store, tmp_path))
    assert f"{store}: not a readable sample store (" in line
    assert READ_PROBLEM[damage] in line
    assert array in line


@pytest.mark.parametrize("command", ["acquire", "summarize", "invert"])
def test_sample_store_without_a_required_attribute(tmp_path, capsys, command):
    store = sample_store(tmp_path)
    metadata = json.loads((store / "zarr.json").read_text())
    del metadata["attributes"]["frequency_hz"]  # a hand-edited or half-copied store
    (store / "zarr.json").write_text(json.dumps(metadata))
    line = fails(tmp_path, capsys, *sample_command(command, store, tmp_path))
    assert f"{store}: not a readable sample store (attributes ['frequency_hz'] are missing)" in line


@pytest.mark.parametrize("command", ["acquire", "summarize", "invert", "pack"])
def test_folder_that_is_not_a_zarr_store(tmp_path, capsys, command):
    folder = tmp_path / "dicoms"
    folder.mkdir()
    (folder / "IM0001.dcm").write_bytes(b"DICM")
    line = fails(tmp_path, capsys, *sample_command(command, folder, tmp_path))
    assert f"{folder}: not a sample store (no zarr.json" in line


@pytest.mark.parametrize("command", ["acquire", "summarize", "invert", "pack"])
def test_missing_sample_store(tmp_path, capsys, command):
    missing = tmp_path / "nowhere.zarr"
    line = fails(tmp_path, capsys, *sample_command(command, missing, tmp_path))
    assert f"{missing}: no" in line  # "no sample store there" / "no such file or folder"


@pytest.mark.parametrize("command", ["acquire", "summarize", "invert", "pack"])
def test_unknown_sample_store_schema(tmp_path, capsys, command):
    store = sample_store(tmp_path, acquired=command == "pack")
    set_attr(store, "schema_version", 99)
    line = fails(tmp_path, capsys, *sample_command(command, store, tmp_path))
    assert f"{store}: schema_version 99 is not supported (this version reads 1)" in line


@pytest.mark.parametrize(
    ("value", "phrase"),
    [(np.nan, "has 1 non-finite (NaN/inf) values"), (0.0, "is zero in the tissue mask")],
    ids=["nan", "zero"],
)
def test_nan_or_all_zero_displacement_in_a_store(tmp_path, capsys, value, phrase):
    sample = simulated("homogeneous", 3, shape=SHAPE)
    if np.isnan(value):
        sample.displacement[0, 5, 5] = value
    else:
        sample.displacement[:] = value
    store = tmp_path / "sample.zarr"
    write_sample(store, sample)
    line = fails(tmp_path, capsys, *sample_command("acquire", store, tmp_path))
    assert f"{store}: the displacement" in line and phrase in line


# --- packs and estimates stores -----------------------------------------------------------------


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    return make_pack(tmp_path / "test.zarr", n=2, shape=SHAPE)


@pytest.fixture
def estimates(tmp_path: Path, pack: Path) -> Path:
    path = tmp_path / "di.zarr"
    invert_pack(pack, "di", path)
    return path


def pack_command(command: str, pack: Path, tmp_path: Path) -> list[object]:
    if command == "invert":
        return ["invert", pack, "--method", "di", "--out", tmp_path / "est.zarr"]
    if command == "evaluate":
        estimates = tmp_path / "di.zarr"
        return ["evaluate", "--truth", pack, "--estimates", estimates, "--out-dir", tmp_path / "m"]
    good = make_pack(tmp_path / "val.zarr", n=2, shape=SHAPE, seed=1)
    argv = ["--quiet", "train", "--train", pack, "--val", good, "--out-dir", tmp_path / "run"]
    return [*argv, *TINY_ARGS]


PACK_DAMAGE = [
    ("garbage-zarr-json", "", "invert", "not a readable Zarr store (zarr.json: "),
    ("garbage-zarr-json", "", "evaluate", "not a readable packed dataset ('utf-8'"),
    ("garbage-chunk", "measured", "invert", "not a readable packed dataset (array 'measured'"),
    ("garbage-chunk", "measured", "train", "not a readable packed dataset (array 'measured'"),
    ("half-chunk", "modulus", "evaluate", "not a readable packed dataset (array 'modulus'"),
    ("missing-chunk", "measured", "invert", "(array 'measured' lacks 1 of its 2 chunk files)"),
    ("missing-array", "mask", "evaluate", "not a readable packed dataset (array 'mask' is"),
]


@pytest.mark.parametrize(
    ("damage", "array", "command", "phrase"),
    PACK_DAMAGE,
    ids=[f"{damage}-{array or 'group'}-{command}" for damage, array, command, _ in PACK_DAMAGE],
)
def test_damaged_pack(tmp_path, capsys, estimates, pack, damage, array, command, phrase):
    DAMAGE[damage](pack, array)
    line = fails(tmp_path, capsys, *pack_command(command, pack, tmp_path))
    assert f"{pack}: " in line and phrase in line


@pytest.mark.parametrize("command", ["invert", "evaluate", "train"])
def test_unknown_pack_schema(tmp_path, capsys, estimates, pack, command):
    set_attr(pack, "schema_version", 7)
    line = fails(tmp_path, capsys, *pack_command(command, pack, tmp_path))
    assert f"{pack}: schema_version 7 is not supported (this version reads 1)" in line


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_pack_that_is_not_there_or_not_zarr(tmp_path, capsys, estimates, command):
    missing = tmp_path / "nowhere.zarr"
    assert f"{missing}: no packed dataset there" in fails(
        tmp_path, capsys, *pack_command(command, missing, tmp_path)
    )
    folder = tmp_path / "folder"
    folder.mkdir()
    assert f"{folder}: not a packed dataset (no zarr.json" in fails(
        tmp_path, capsys, *pack_command(command, folder, tmp_path)
    )


ESTIMATES_DAMAGE = [
    ("schema", "not an estimates store this version reads (kind 'estimates', schema_version 5"),
    ("garbage-zarr-json", "not a readable estimates store ("),
    ("garbage-chunk", "not a readable estimates store (array 'modulus': Zstd"),
    ("missing-array", "not a readable estimates store (array 'confidence' is missing)"),
    ("missing", "no estimates store there"),
]


@pytest.mark.parametrize(
    ("damage", "phrase"),
    ESTIMATES_DAMAGE,
    ids=[case for case, _ in ESTIMATES_DAMAGE],
)
def test_damaged_estimates_store(tmp_path, capsys, pack, estimates, damage, phrase):
    if damage == "schema":
        set_attr(estimates, "schema_version", 5)
    elif damage == "missing":
        shutil.rmtree(estimates)
    else:
        DAMAGE[damage](estimates, "confidence" if damage == "missing-array" else "modulus")
    line = fails(tmp_path, capsys, *pack_command("evaluate", pack, tmp_path))
    assert f"{estimates}: {phrase}" in line


# --- configuration files ------------------------------------------------------------------------

CONFIGS = {
    "unknown-key": ("seed: 1\nbogus_key: 3\n", "key 'bogus_key': Extra inputs are not permitted"),
    "wrong-type": ("seed: not-a-number\n", "key 'seed': Input should be a valid integer"),
    "negative-snr": ("acquisition: {snr: [-3]}\n", "key 'acquisition.snr.0': Input should be"),
    "min-above-max": (
        "frequency_hz: {min: 70, max: 50}\n",
        "key 'frequency_hz': Value error, min (70.0) must not exceed max (50.0)",
    ),
    "malformed-yaml": ("seed: [1, 2\nfoo: 3\n", "is not valid YAML: expected ',' or ']'"),
    "not-a-mapping": ("- seed\n- 1\n", "top level must be a mapping of keys"),
    "binary": (None, "is not UTF-8 text"),
}


def write_config(path: Path, text: str | None) -> Path:
    if text is None:
        path.write_bytes(bytes(range(128, 256)))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("case", list(CONFIGS))
def test_bad_study_config(tmp_path, capsys, case):
    text, phrase = CONFIGS[case]
    config = write_config(tmp_path / "study.yaml", text)
    out = tmp_path / "resolved.yaml"
    out.write_text("an earlier resolved config\n")
    line = fails(tmp_path, capsys, "config", "--config", config, "--out", out)
    assert f"config {config}" in line and phrase in line


def test_bad_study_config_elsewhere(tmp_path, capsys):
    """Every command given --config validates it the same way (here `phantom`)."""
    config = write_config(tmp_path / "study.yaml", CONFIGS["wrong-type"][0])
    argv = ["phantom", "homogeneous", "--seed", 1, "--config", config]
    line = fails(tmp_path, capsys, *argv, "--out", tmp_path / "phantom")
    assert f"config {config} key 'seed'" in line


def test_missing_config_and_bad_json(tmp_path, capsys):
    missing = tmp_path / "nowhere.yaml"
    line = fails(tmp_path, capsys, "config", "--config", missing, "--out", tmp_path / "r.yaml")
    assert f"cannot read config {missing}: No such file or directory" in line
    line = fails(tmp_path, capsys, "config", "--json", "{seed: 1}")
    assert "--json is not valid JSON: Expecting property name" in line


@pytest.mark.parametrize(
    ("text", "options", "phrase"),
    [
        ("network: {width: 8, colour: red}\n", [], "train.yaml key 'network.colour': Extra"),
        ("seed: not-a-number\n", [], "train.yaml key 'seed': Input should be a valid integer"),
        ("data: {batch_size: -4}\n", [], "train.yaml key 'data.batch_size': Input should be"),
        ("trainer: [max_epochs\n", [], "is not valid YAML: expected ',' or ']'"),
        (None, [], "cannot read training config"),
        (
            "seed: 1\n",
            ["--max-epochs", "0"],
            "command-line training option key 'trainer.max_epochs'",
        ),
        ("trainer: 5\n", ["--max-epochs", "2"], "train.yaml key 'trainer': must be a mapping"),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "out-of-range",
        "malformed-yaml",
        "missing-file",
        "bad-option",
        "option-under-a-scalar",
    ],
)
def test_bad_training_config(tmp_path, capsys, text, options, phrase):
    """The line names the file the bad key is in, or the command line for a bad option."""
    pack = make_pack(tmp_path / "train.zarr", n=2, shape=SHAPE)
    config = tmp_path / "train.yaml"
    if text is not None:
        config.write_text(text)
    argv = ["--quiet", "train", "--train", pack, "--val", pack, "--out-dir", tmp_path / "run"]
    assert phrase in fails(tmp_path, capsys, *argv, "--config", config, *options)


# --- model files and checkpoints ----------------------------------------------------------------


@pytest.fixture
def wave(tmp_path: Path) -> Path:
    """A complex-layout NIfTI that `invert --method dime` accepts."""
    field = volume_xyz((24, 20))[..., 0]
    return save_nifti(tmp_path / "wave.nii", np.stack([field.real, field.imag], axis=-1))


def model_file(tmp_path: Path, case: str) -> Path:
    path = tmp_path / "model.pt"
    if case == "missing":
        return path
    if case == "random-bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
        return path
    save_model(DimeUNet(TINY), path)
    if case == "truncated":
        halve(path)
        return path
    payload = torch.load(path, weights_only=True)
    if case == "other-format":
        payload["format"] = "someone-else/unet"
    elif case == "newer-version":
        payload["format_version"] = 2
    elif case == "other-network":  # weights of width 8, a file that says width 12
        payload["network"]["width"] = 12
    elif case == "unknown-network-key":
        payload["network"]["attention"] = True
    elif case == "plain-state-dict":
        payload = payload["state_dict"]
    torch.save(payload, path)
    return path


MODEL_CASES = [
    ("missing", "no such DIME model file"),
    ("random-bytes", "not a DIME model file (UnpicklingError)"),
    ("truncated", "not a DIME model file (RuntimeError)"),
    ("plain-state-dict", "not a DIME model file (format None, not 'dime-pipeline/dime-model')"),
    ("other-format", "not a DIME model file (format 'someone-else/unet'"),
    ("newer-version", "DIME model format version 2 is not supported (this version reads 1)"),
    ("other-network", "the weights do not fit the network the file describes (size mismatch"),
    ("unknown-network-key", "network key 'attention': Extra inputs are not permitted"),
]


@pytest.mark.parametrize(
    ("case", "phrase"),
    MODEL_CASES,
    ids=[case for case, _ in MODEL_CASES],
)
def test_bad_model_file(tmp_path, capsys, wave, case, phrase):
    model = model_file(tmp_path, case)
    argv = ["invert", wave, "--method", "dime", "--model", model, "--frequency-hz", 60]
    line = fails(tmp_path, capsys, *argv, "--layout", "complex", "--out", tmp_path / "g.nii")
    assert f"{model}: {phrase}" in line


def test_missing_model_from_the_environment(tmp_path, capsys, wave, monkeypatch):
    monkeypatch.setenv("DIME_MODEL", str(tmp_path / "gone.pt"))
    argv = ["invert", wave, "--method", "dime", "--frequency-hz", 60, "--layout", "complex"]
    line = fails(tmp_path, capsys, *argv, "--out", tmp_path / "g.nii")
    assert f"{tmp_path / 'gone.pt'}: no such DIME model file" in line


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (one tiny epoch) training run: checkpoints/last.ckpt, model.pt, config.yaml."""
    root = tmp_path_factory.mktemp("run")
    pack = make_pack(root / "train.zarr", n=2, shape=SHAPE)
    argv = ["--quiet", "train", "--train", pack, "--val", pack, "--out-dir", root / "run"]
    options = ["--max-epochs", 1, "--crops-per-epoch", 4, "--batch-size", 4, "--num-workers", 0]
    with warnings.catch_warnings():  # one batch per epoch: Lightning's logging-interval note
        warnings.filterwarnings("ignore", message="The number of training batches")
        assert main([str(a) for a in [*argv, *TINY_ARGS, *options, "--accelerator", "cpu"]]) == 0
    return root


CHECKPOINT_CASES = [
    ("other-network", "was trained with network"),
    ("garbage-checkpoint", "cannot resume from it (UnpicklingError)"),
]


@pytest.mark.parametrize(
    ("case", "phrase"),
    CHECKPOINT_CASES,
    ids=[case for case, _ in CHECKPOINT_CASES],
)
def test_train_resume_from_an_incompatible_checkpoint(tmp_path, capsys, finished_run, case, phrase):
    shutil.copytree(finished_run, tmp_path, dirs_exist_ok=True)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    width = "12" if case == "other-network" else "8"  # the run was trained with width 8
    if case == "garbage-checkpoint":
        garbage(last)
    pack = tmp_path / "train.zarr"
    argv = ["--quiet", "train", "--train", pack, "--val", pack]
    tiny = ["--patch-size", "16", "--depth", "2", "--width", width]
    line = fails(tmp_path, capsys, *argv, "--out-dir", tmp_path / "run", *tiny)
    assert f"{last}" in line and phrase in line


def test_checkpoint_given_as_a_model(tmp_path, capsys, finished_run, wave):
    """A Lightning checkpoint is not a model file (model.pt is)."""
    checkpoint = finished_run / "run" / "checkpoints" / "last.ckpt"
    argv = ["invert", wave, "--method", "dime", "--model", checkpoint, "--frequency-hz", 60]
    line = fails(tmp_path, capsys, *argv, "--layout", "complex", "--out", tmp_path / "g.nii")
    assert f"{checkpoint}: not a DIME model file" in line


# --- user data for `invert`: NIfTI shape and voxel size, NaN and all-zero fields ----------------

WAVES = wave_images(volume_xyz((24, 20)), n_offsets=4)  # (X, Y, Z, T)


def nifti_with_pixdim(path: Path, pixdim: tuple[float, float]) -> Path:
    """A valid wave NIfTI whose header states in-plane voxel sizes ``pixdim`` (i, j), as-is."""
    image = nib.Nifti1Image(WAVES, AFFINE)
    image.header.set_xyzt_units("mm", "sec")
    image.header["pixdim"][1:3] = pixdim  # set_zooms refuses these: write the field directly
    nib.save(image, path)
    return path


NIFTI_CASES: dict[str, tuple[Callable[[Path], Path], list[str], str]] = {
    "2d-image": (
        lambda p: save_nifti(p, WAVES[..., 0, 0]),
        [],
        "shape (24, 20) is not (X, Y, T), (X, Y, Z, T) or (X, Y, Z, C, T) for --layout offsets",
    ),
    "6d-image": (
        lambda p: save_nifti(p, WAVES[..., None, None]),
        [],
        "shape (24, 20, 2, 4, 1, 1) is not (X, Y, T)",
    ),
    "offsets-on-first-axis": (
        lambda p: save_nifti(p, np.moveaxis(WAVES[:, :, 0], -1, 0)),
        [],
        "in-plane size 24×4 is too small (need at least 8×8 pixels)",
    ),
    "two-offsets": (
        lambda p: save_nifti(p, WAVES[..., :2]),
        [],
        "last axis has 2 phase offsets, --layout offsets needs at least 3",
    ),
    "complex-last-axis-4": (
        lambda p: save_nifti(p, WAVES),
        ["--layout", "complex"],
        "last axis has length 4, --layout complex needs 2 (real, imaginary)",
    ),
    "zero-pixdim": (
        lambda p: nifti_with_pixdim(p, (0.0, 0.0)),
        [],
        "INPUT's in-plane voxel sizes (0 mm and 0 mm) must be positive numbers, give "
        "--voxel-size-mm",
    ),
    "negative-pixdim": (
        lambda p: nifti_with_pixdim(p, (-1.5, -1.5)),
        [],
        "INPUT's in-plane voxel sizes (-1.5 mm and -1.5 mm) must be positive numbers",
    ),
    "nan-pixdim": (
        lambda p: nifti_with_pixdim(p, (np.nan, 1.5)),
        [],
        "INPUT's in-plane voxel sizes (1.5 mm and nan mm) must be positive numbers",
    ),
    "nan-voxel": (
        lambda p: save_nifti(p, np.where(np.indices(WAVES.shape)[0] == 3, np.nan, WAVES)),
        [],
        "INPUT has 40 non-finite (NaN/inf) voxels (give --mask to exclude them)",
    ),
    "all-zero": (
        lambda p: save_nifti(p, np.zeros_like(WAVES)),
        [],
        "INPUT is all zeros, there is no wave to invert",
    ),
    "truncated-file": (
        lambda p: truncated(save_nifti(p, WAVES)),
        [],
        "not a readable NIfTI file (its header promises",
    ),
}


@pytest.mark.parametrize("case", list(NIFTI_CASES))
def test_bad_nifti(tmp_path, capsys, case):
    build, extra, phrase = NIFTI_CASES[case]
    source = build(tmp_path / "waves.nii")
    argv = ["invert", source, "--method", "mmdi", "--frequency-hz", 60, *extra]
    line = fails(tmp_path, capsys, *argv, "--out", tmp_path / "g.nii.gz")
    assert f"{source}: {phrase}" in line


@pytest.mark.parametrize("value", ["0", "-1.5", "nan"])
def test_bad_voxel_size_option(tmp_path, capsys, value):
    source = save_nifti(tmp_path / "waves.nii", WAVES)
    argv = ["invert", source, "--method", "di", "--frequency-hz", 60, "--voxel-size-mm", value]
    line = fails(tmp_path, capsys, *argv, "--out", tmp_path / "g.nii")
    assert f"--voxel-size-mm must be a positive number, got {float(value)}" in line


def test_mask_of_the_wrong_shape(tmp_path, capsys):
    source = save_nifti(tmp_path / "waves.nii", WAVES)
    mask = save_nifti(tmp_path / "mask.nii", np.ones((24, 21, 2)))
    argv = ["invert", source, "--method", "di", "--frequency-hz", 60, "--mask", mask]
    line = fails(tmp_path, capsys, *argv, "--out", tmp_path / "g.nii")
    assert f"{mask}: mask shape (24, 21, 2) does not match INPUT's (24, 20, 2)" in line


@pytest.mark.parametrize(
    ("data", "extra", "phrase"),
    [
        (np.zeros((20, 24), complex), ["--voxel-size-mm", "1.5"], "INPUT is all zeros"),
        (
            np.full((20, 24), np.nan + 0j),
            ["--voxel-size-mm", "1.5"],
            "INPUT has 480 non-finite (NaN/inf)",
        ),
        (np.ones((20, 24)), ["--voxel-size-mm", "1.5"], ".npy INPUT must be complex"),
        (np.ones((20, 24), complex), [], "INPUT has no voxel size, give --voxel-size-mm"),
    ],
    ids=["all-zero", "all-nan", "real-valued", "no-voxel-size"],
)
def test_bad_npy(tmp_path, capsys, data, extra, phrase):
    source = tmp_path / "u.npy"
    np.save(source, data)
    argv = ["invert", source, "--method", "di", "--frequency-hz", 60, *extra]
    line = fails(tmp_path, capsys, *argv, "--out", tmp_path / "g.nii")
    assert f"{source}: {phrase}" in line


def test_one_line_on_the_real_stderr(tmp_path, tool_env):
    """The console script, not just main(), without --quiet: nibabel's own header warnings
    stay off stderr."""
    script = Path(sys.executable).parent / "dime-pipeline"
    if not script.exists():
        pytest.skip("dime-pipeline is not installed in this environment")
    source = nifti_with_pixdim(tmp_path / "waves.nii", (0.0, 0.0))
    before = tree(tmp_path)
    argv = [str(script), "invert", str(source), "--method", "di", "--frequency-hz", "60"]
    done = subprocess.run(
        [*argv, "--out", str(tmp_path / "g.nii")],
        capture_output=True,
        text=True,
        env=tool_env,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"dime-pipeline invert: error: {source}: INPUT's in-plane voxel sizes (0 mm and 0 mm) "
        "must be positive numbers, give --voxel-size-mm"
    ]
    assert tree(tmp_path) == before


@pytest.mark.parametrize("workers", [0, 1])
def test_damaged_chunk_found_by_lazy_training_reads(tmp_path, capsys, pack, workers):
    """Packs above ``data.preload_mb`` are read crop by crop, in DataLoader workers: a damaged
    chunk found mid-training is still one line naming the pack, and no model is exported."""
    DAMAGE["garbage-chunk"](pack, "measured")
    config = tmp_path / "lazy.yaml"
    config.write_text(f"data: {{preload_mb: 0, num_workers: {workers}}}\n")
    argv = [*pack_command("train", pack, tmp_path), "--config", config]
    assert main([str(a) for a in argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dime-pipeline train: error: ")
    assert f"{pack}: not a readable packed dataset (Zstd decompression error" in lines[0]
    assert not (tmp_path / "run" / "model.pt").exists()
