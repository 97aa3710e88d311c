"""MATLAB ``.mat`` INPUT: one numeric array, v4/v6/v7 files through ``scipy.io.loadmat``, v7.3
(HDF5) files through ``h5py``.

Both routes give the array in MATLAB's index order, so that ``A(i1, i2, ...)`` is
``a[i1-1, i2-1, ...]`` and ``size(A)`` is ``a.shape``: scipy keeps that order; a v7.3 file holds
MATLAB's column-major data as an HDF5 dataset whose dimensions are listed in reverse, so h5py
shows the transpose, undone here (``a.T``). Complex arrays come from scipy as complex, from
h5py as a compound of 'real' and 'imag' fields, joined here. The axes then follow the ``.npy``
convention: ``size(U)`` is [y x], [z y x] or [component z y x].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dime_pipeline.errors import UserError, one_line

NUMERIC_CLASSES = frozenset(
    {"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}
)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_Entry = tuple[str, tuple[int, ...], str]  # name, MATLAB size, MATLAB class


def read_mat_array(path: Path, variable: str | None) -> tuple[str, np.ndarray]:
    """(name, array) of the chosen numeric variable: ``variable``, else the file's only one."""
    if _is_hdf5(path):
        return _read_v73(path, variable)
    return _read_v5(path, variable)


def _is_hdf5(path: Path) -> bool:
    """MATLAB v7.3 files are HDF5 with a 512-byte user block (MATLAB's text header)."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(520)
    except OSError as error:
        raise UserError(f"{path}: not a readable MATLAB file ({one_line(error)})") from None
    return head[:8] == HDF5_SIGNATURE or head[512:520] == HDF5_SIGNATURE


def _unreadable(path: Path, error: BaseException) -> UserError:
    return UserError(f"{path}: not a readable MATLAB .mat file ({one_line(error)})")


def _read_v5(path: Path, variable: str | None) -> tuple[str, np.ndarray]:
    from scipy.io import loadmat, whosmat

    try:
        listing = [(name, tuple(shape), kind) for name, shape, kind in whosmat(path)]
    except MemoryError:
        raise
    except Exception as error:  # scipy raises many kinds on a damaged or foreign file
        raise _unreadable(path, error) from None
    name, shape = _choose(path, variable, listing)
    _check_memory(path, shape)
    try:
        data = loadmat(path, variable_names=[name], squeeze_me=False)[name]
    except MemoryError:
        raise
    except Exception as error:
        raise _unreadable(path, error) from None
    return name, np.asarray(data)


def _read_v73(path: Path, variable: str | None) -> tuple[str, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise UserError(
            f"{path}: a MATLAB v7.3 (HDF5) file; reading it needs h5py (pip install h5py), or "
            "save it from MATLAB with save(..., '-v7')"
        ) from None
    try:
        with h5py.File(path, "r") as stream:
            listing = [_hdf5_entry(name, item, h5py) for name, item in stream.items()]
            listing = [entry for entry in listing if not entry[0].startswith("#")]
            name, shape = _choose(path, variable, listing)
            _check_memory(path, shape)
            data = stream[name][()]
    except (UserError, MemoryError):
        raise
    except Exception as error:
        raise _unreadable(path, error) from None
    names = data.dtype.names or ()
    if {"real", "imag"} <= set(names):
        data = data["real"] + 1j * data["imag"]
    return name, np.asarray(data).T  # HDF5 lists MATLAB's dimensions in reverse


def _hdf5_entry(name: str, item, h5py) -> _Entry:
    """A top-level object of a v7.3 file as (name, MATLAB size, MATLAB class)."""
    kind = item.attrs.get("MATLAB_class", b"")
    kind = kind.decode(errors="replace") if isinstance(kind, bytes) else str(kind)
    if not isinstance(item, h5py.Dataset):
        return name, (), kind or "struct"
    if not kind:  # an HDF5 file not written by MATLAB: judge by the data type
        names = item.dtype.names or ()
        numeric = item.dtype.kind in "iuf" or {"real", "imag"} <= set(names)
        kind = "double" if numeric else str(item.dtype)
    if item.attrs.get("MATLAB_empty", 0):
        return name, (0,), f"empty {kind}"
    return name, tuple(item.shape[::-1]), kind


def _describe(entries: list[_Entry]) -> str:
    shown = ", ".join(
        f"{n} ({k} {'×'.join(map(str, s))})".replace(" )", ")") for n, s, k in entries
    )
    return shown or "nothing"


def _choose(path: Path, variable: str | None, entries: list[_Entry]) -> tuple[str, tuple]:
    numeric = [entry for entry in entries if entry[2] in NUMERIC_CLASSES]
    if variable is not None:
        chosen = [entry for entry in entries if entry[0] == variable]
        if not chosen:
            raise UserError(
                f"{path}: no variable {variable!r} in the file (it holds {_describe(entries)})"
            )
        name, shape, kind = chosen[0]
        if kind not in NUMERIC_CLASSES:
            raise UserError(f"{path}: variable {name!r} is a MATLAB {kind}, not a numeric array")
        return name, shape
    if not numeric:
        raise UserError(f"{path}: no numeric array in the file (it holds {_describe(entries)})")
    if len(numeric) > 1:
        raise UserError(
            f"{path}: the file holds {len(numeric)} numeric arrays ({_describe(numeric)}): "
            "choose one with --mat-variable"
        )
    return numeric[0][0], numeric[0][1]


def _check_memory(path: Path, shape: tuple[int, ...]) -> None:
    from dime_pipeline.userdata.memory import check_memory

    check_memory(path, float(np.prod(shape, dtype=float)) * 8)  # as float64; complex: ×2 inside
