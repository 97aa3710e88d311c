"""Small atomic file writes: a killed job never leaves a half-written file that looks finished.

Folders (Zarr stores, phantoms) have their counterpart in ``dime_pipeline.store.atomic_directory``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
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
