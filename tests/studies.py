"""Compare two study folders: every Zarr store, metrics file, phantom and model, value by value.

Wall-clock facts (solve and inversion timings) are the only content allowed to differ. Run as a
script to compare two runs of the demo, e.g. ``python tests/studies.py RUN_A RUN_B``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

# Measured durations and creation times: by nature not repeatable.
WALL_CLOCK_KEYS = frozenset({"timings", "seconds", "seconds_total", "solve_seconds", "created_utc"})
COMPARED = ("meshes", "results")
SKIPPED = ("logs", "benchmarks", "report", "figures")  # timings, timestamps, rendered images


def study_differences(first: Path, second: Path) -> list[str]:
    """Human-readable differences between two study folders (empty when equivalent)."""
    differences: list[str] = []
    names = sorted(set(_outputs(first)) | set(_outputs(second)))
    if not names:  # nothing compared is not "identical"
        return [f"no meshes/ or results/ outputs in {first} or {second}"]
    for name in names:
        a, b = first / name, second / name
        if not (a.exists() and b.exists()):
            differences.append(f"{name}: only in {'the first' if a.exists() else 'the second'}")
        elif name.endswith(".zarr"):
            differences += [f"{name}: {d}" for d in _store_differences(a, b)]
        elif name.endswith(".json"):
            if _strip(json.loads(a.read_text())) != _strip(json.loads(b.read_text())):
                differences.append(f"{name}: JSON content differs")
        elif name.endswith((".pt", ".ckpt")):
            if not _same_weights(a, b):
                differences.append(f"{name}: weights differ")
        elif _digest(a) != _digest(b):
            differences.append(f"{name}: bytes differ")
    return differences


def _outputs(root: Path) -> Iterator[str]:
    """Relative paths of the files to compare; a Zarr store counts as one item."""
    for top in COMPARED:
        stack = [root / top]
        while stack:
            folder = stack.pop()
            if not folder.is_dir() or folder.name in SKIPPED or folder.name.startswith("."):
                continue
            for child in sorted(folder.iterdir()):
                if child.name.endswith(".zarr"):
                    yield str(child.relative_to(root))
                elif child.is_dir():
                    stack.append(child)
                elif child.suffix in (".json", ".pt", ".ckpt", ".msh", ".npy", ".yaml"):
                    yield str(child.relative_to(root))


def _store_differences(a: Path, b: Path) -> list[str]:
    first, second = zarr.open_group(a, mode="r"), zarr.open_group(b, mode="r")
    out = []
    if _strip(dict(first.attrs)) != _strip(dict(second.attrs)):
        out.append("attributes differ")
    arrays = sorted(set(first.array_keys()) | set(second.array_keys()))
    for name in arrays:
        if name in WALL_CLOCK_KEYS:
            continue
        if name not in first or name not in second:
            out.append(f"array {name!r} in one store only")
        elif not np.array_equal(first[name][...], second[name][...], equal_nan=True):
            out.append(f"array {name!r} differs")
    return out


def _strip(value: Any) -> Any:
    """``value`` without wall-clock entries, at any depth."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in WALL_CLOCK_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _same_weights(a: Path, b: Path) -> bool:
    first = torch.load(a, map_location="cpu", weights_only=True)["state_dict"]
    second = torch.load(b, map_location="cpu", weights_only=True)["state_dict"]
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    found = study_differences(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(found) if found else "identical (wall-clock timings aside)")
    sys.exit(1 if found else 0)
