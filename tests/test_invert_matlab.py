"""``dime-pipeline invert`` of MATLAB .mat files: v5/v7 (scipy) and v7.3 (HDF5, h5py) give the
same field as the .npy of the same array; ``--mat-variable``; one error line for bad files."""

from __future__ import annotations

from pathlib import Path

import h5py  # a dependency: v7.3 files are always tested
import numpy as np
import pytest
import scipy.io
from test_invert_cli import invert, load, volume_xyz

ARGS = ("--method", "di", "--frequency-hz", "60", "--voxel-size-mm", "1.5")
MATLAB_CLASS = {np.dtype("float64"): "double", np.dtype("complex128"): "double"}


def library_field(n_dims: int) -> np.ndarray:
    """A complex field in the .npy axis order: (y, x), (z, y, x) or (component, z, y, x)."""
    field = np.moveaxis(volume_xyz((40, 36)), -1, 0).transpose(0, 2, 1)  # (z=2, y=36, x=40)
    return {2: field[1], 3: field, 4: np.stack([field, 0.5 * field])}[n_dims]


def save_mat73(path: Path, variables: dict[str, object]) -> Path:
    """Write ``variables`` as MATLAB's ``save -v7.3`` does: an HDF5 file behind a 512-byte
    MATLAB header, each array stored column-major, i.e. as an HDF5 dataset of the transpose,
    complex as a compound of 'real' and 'imag', its MATLAB class as an attribute; text as
    uint16 'char'."""
    with h5py.File(path, "w", userblock_size=512) as stream:
        for name, value in variables.items():
            if isinstance(value, str):
                data = np.array([[ord(c)] for c in value], np.uint16)
                stream.create_dataset(name, data=data).attrs["MATLAB_class"] = np.bytes_("char")
                continue
            value = np.asarray(value)
            data = value.T  # MATLAB's column-major layout: HDF5 lists the dimensions reversed
            if np.iscomplexobj(value):
                pair = np.dtype([("real", "<f8"), ("imag", "<f8")])
                data = np.empty(value.T.shape, pair)
                data["real"], data["imag"] = value.T.real, value.T.imag
            kind = MATLAB_CLASS.get(value.dtype, value.dtype.name)
            stream.create_dataset(name, data=data).attrs["MATLAB_class"] = np.bytes_(kind)
        stream.create_group("info").attrs["MATLAB_class"] = np.bytes_("struct")
    header = (
        b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 "
        b"HDF5 schema 1.00 ."
    )
    with open(path, "r+b") as stream:
        stream.write(header.ljust(116) + b" " * 8 + b"\x00\x02IM")
    return path


def inverted(tmp_path: Path, source: Path, *extra: str) -> np.ndarray:
    out = tmp_path / f"{source.stem}-out.nii"
    assert invert(source, *ARGS, *extra, "--out", out) == 0
    return load(out)[0]


@pytest.mark.parametrize("n_dims", [2, 3, 4])
def test_v5_and_v73_give_the_npy_result(tmp_path, n_dims):
    field = library_field(n_dims)
    np.save(tmp_path / "u.npy", field)
    scipy.io.savemat(tmp_path / "v5.mat", {"U": field})
    save_mat73(tmp_path / "v73.mat", {"U": field})
    assert scipy.io.matlab.matfile_version(tmp_path / "v73.mat") == (2, 0)  # MATLAB's header
    with h5py.File(tmp_path / "v73.mat", "r") as stream:
        assert stream["U"].shape == field.shape[::-1]  # h5py sees MATLAB arrays transposed
    expected = inverted(tmp_path, tmp_path / "u.npy")
    spatial = field.shape[-3:] if n_dims > 2 else (*field.shape, 1)
    assert expected.shape == (*spatial, 4) and expected[..., 0].any()
    assert np.array_equal(inverted(tmp_path, tmp_path / "v5.mat"), expected)
    assert np.array_equal(inverted(tmp_path, tmp_path / "v73.mat"), expected)


@pytest.mark.parametrize("version", ["v5", "v73"])
def test_mat_variable_picks_one_of_several_arrays(tmp_path, capsys, version):
    field = library_field(3)
    variables = {"U": field, "mask": np.ones(field.shape), "note": "liver, 60 Hz"}
    path = tmp_path / f"{version}.mat"
    if version == "v5":
        scipy.io.savemat(path, variables)
    else:
        save_mat73(path, variables)
    argv = [path, *ARGS, "--out", tmp_path / "g.nii"]
    assert invert(*argv) == 2
    line = capsys.readouterr().err.strip()
    assert "the file holds 2 numeric arrays (" in line and "choose one with --mat-variable" in line
    np.save(tmp_path / "u.npy", field)
    assert np.array_equal(
        inverted(tmp_path, path, "--mat-variable", "U"), inverted(tmp_path, tmp_path / "u.npy")
    )


def test_the_only_numeric_array_is_taken(tmp_path):
    field = library_field(2)
    scipy.io.savemat(tmp_path / "one.mat", {"U": field, "note": "text is not numeric"})
    save_mat73(tmp_path / "one73.mat", {"field": field, "note": "text"})
    assert np.array_equal(
        inverted(tmp_path, tmp_path / "one.mat"), inverted(tmp_path, tmp_path / "one73.mat")
    )


def bad_file(tmp_path: Path, case: str) -> tuple[Path, list[str]]:
    field = library_field(3)
    path = tmp_path / "in.mat"
    if case in ("no-such-variable", "no-such-variable-v73"):
        variables = {"U": field}
        save = save_mat73 if case.endswith("v73") else scipy.io.savemat
        save(path, variables)
        return path, ["--mat-variable", "V"]
    if case == "char-variable":
        scipy.io.savemat(path, {"U": field, "note": "hello"})
        return path, ["--mat-variable", "note"]
    if case == "struct-variable-v73":
        save_mat73(path, {"U": field})
        return path, ["--mat-variable", "info"]
    if case == "no-numeric-array":
        scipy.io.savemat(path, {"note": "hello"})
        return path, []
    if case == "real":
        scipy.io.savemat(path, {"U": field.real})
        return path, []
    if case == "real-v73":
        save_mat73(path, {"U": field.real})
        return path, []
    if case == "five-dims":
        save_mat73(path, {"U": field[None, None]})
        return path, []
    if case == "garbage":
        path.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(range(256)) * 3)
        return path, []
    raise ValueError(case)


BAD = {
    "no-such-variable": "no variable 'V' in the file (it holds U (double 2×36×40))",
    "no-such-variable-v73": "no variable 'V' in the file (it holds U (double 2×36×40), info",
    "char-variable": "variable 'note' is a MATLAB char, not a numeric array",
    "struct-variable-v73": "variable 'info' is a MATLAB struct, not a numeric array",
    "no-numeric-array": "no numeric array in the file (it holds note (char 1))",
    "real": "MATLAB variable 'U' must be complex (first harmonic U), not float64",
    "real-v73": "MATLAB variable 'U' must be complex (first harmonic U), not float64",
    "five-dims": "MATLAB variable 'U' of size 1×1×2×36×40 (MATLAB's order) is not (y, x), "
    "(z, y, x) or (component, z, y, x)",
    "garbage": "not a readable MATLAB .mat file (",
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_mat_input_is_one_line(tmp_path, capsys, case):
    path, extra = bad_file(tmp_path, case)
    before = sorted(tmp_path.iterdir())
    assert invert(path, *ARGS, *extra, "--out", tmp_path / "g.nii") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dime-pipeline invert: error: "), lines
    assert f"{path}: {BAD[case]}" in lines[0]
    assert sorted(tmp_path.iterdir()) == before
