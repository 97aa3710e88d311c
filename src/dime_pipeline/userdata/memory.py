"""How much memory inverting a user's INPUT takes, checked before anything is read."""

from __future__ import annotations

from pathlib import Path

from dime_pipeline.errors import UserError

# Peak memory of an inversion per byte of the complex field: MMDI's filter bank (and its noise
# debias) needs 35.3, DIME 4.8, DI 2.1 (`python benchmarks/bench_invert_memory.py`: 256² → 1024²
# × 3 components); 40 leaves room for reading the file.
WORK_PER_FIELD_BYTE = 40


def check_memory(path: Path, data_bytes: float) -> None:
    """Refuse, before reading it, an INPUT whose inversion cannot fit in memory."""
    from dime_pipeline.config import memory_bytes

    field_bytes = data_bytes * 16 / 8  # read as float64, inverted as complex128: at most ×2
    need, have = WORK_PER_FIELD_BYTE * field_bytes, memory_bytes()
    if need > have:
        raise UserError(
            f"{path}: inverting {data_bytes / 1e9:.3g} GB of data needs about {need / 1e9:.3g} GB "
            f"of memory, this machine has {have / 1e9:.3g} GB; invert it in parts"
        )
