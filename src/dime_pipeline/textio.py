"""Small atomic file writes: a killed job never leaves a half-written file that looks finished.

Folders (Zarr stores, phantoms) have their counterpart in ``dime_pipeline.store.atomic_directory``.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temporary sibling of ``path`` to write; on success it is renamed to
    ``path`` (atomic on POSIX), on failure removed. The sibling keeps the suffixes of ``path``
    (``.nii.gz`` too), for writers that pick the format from them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffixes = "".join(path.suffixes)
    stem = path.name.removesuffix(suffixes)
    tmp = path.with_name(f".{stem}.tmp-{uuid.uuid4().hex[:8]}{suffixes}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def check_outputs_spare_inputs(
    outputs: Iterable[str | Path | None],
    inputs: Iterable[str | Path | None],
    *,
    folders: bool = False,
) -> None:
    """Refuse, with one line, an output that would replace or sit inside one of the command's
    inputs, or hold one inside it (a store or file output is replaced whole; with ``folders``,
    the outputs are folders that files are written into, and may hold inputs). Paths are
    compared after resolving symlinks, hard links by inode, and a NIfTI name in ``.nii`` and
    ``.nii.gz`` as one (the two spellings of one volume beside each other are a slip waiting
    to happen). ``None`` entries (options not given) are skipped."""
    from dime_pipeline.errors import UserError

    given = [Path(p) for p in inputs if p is not None]
    for out in (Path(p) for p in outputs if p is not None):
        _check_destination(out)
        for source in given:
            if _same_or_nested(out, source, holds=not folders):
                raise UserError(f"{out}: the output would overwrite the input {source}")


def _check_destination(out: Path) -> None:
    """``out`` can be written: not a symbolic link (the writers replace the link, not what it
    points at), and its first existing folder is a folder this process may write in. Checked
    before any work, on every MPI rank, so a long solve does not end in a failed write."""
    from dime_pipeline.errors import UserError

    if out.is_symlink():
        raise UserError(
            f"{out} is a symbolic link (to {os.readlink(out)}): the output would replace the "
            "link, not its target; give the target's own path"
        )
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"{out}: {folder} is not a folder")
    try:  # permissions alone do not tell (root, read-only mounts, /proc): try
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".dime-probe-"):
            pass
    except OSError as error:
        raise UserError(f"{out}: cannot write in {folder} ({error.strerror})") from None


def _same_or_nested(out: Path, source: Path, holds: bool) -> bool:
    a, b = out.resolve(), source.resolve()
    if a == b or b in a.parents or (holds and a in b.parents):
        return True
    if a.exists() and b.exists() and os.path.samefile(a, b):
        return True
    return a.parent == b.parent and _nifti_stem(a.name) == _nifti_stem(b.name) is not None


def _nifti_stem(name: str) -> str | None:
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return None
