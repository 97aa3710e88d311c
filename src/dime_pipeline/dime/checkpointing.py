"""What a killed training run leaves behind, so that rerunning it continues exactly.

- :class:`AtomicCheckpointIO`: checkpoints are written to a sibling and renamed. Lightning's own
  save goes through a temporary file in ``$TMPDIR`` and ``shutil.move``, which is a plain copy
  (a kill leaves a truncated ``last.ckpt``) when ``$TMPDIR`` is another file system, e.g.
  node-local scratch on a cluster.
- :class:`MetricsLog`: the CSV log (Lightning's ``CSVLogger`` format) rewritten whole and
  atomically at every logging call, so a kill loses no row. It lives next to the checkpoints,
  not in the exported ``logs/metrics.csv``: Snakemake deletes the outputs of a killed job
  before rerunning it, and the log must outlive that to continue. A resumed run takes over the
  rows logged before its checkpoint (:func:`log_history`) and logs the rest itself.
"""

from __future__ import annotations

import csv
import io
from argparse import Namespace
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import Logger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only

from dime_pipeline.textio import atomic_file, write_text_atomic

Row = dict[str, float | int]


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a hidden sibling, then rename (see the module docstring)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        with atomic_file(path) as tmp:
            torch.save(checkpoint, tmp)


class MetricsLog(Logger):
    """Lightning logger: ``path`` holds every row logged so far (``history`` first), one row per
    call, columns sorted, empty cells for metrics a row lacks (as ``CSVLogger`` writes it).
    Hyperparameters are not logged: ``config.yaml`` and every checkpoint hold them."""

    def __init__(self, path: str | Path, history: Sequence[Row] = ()) -> None:
        super().__init__()
        self.path = Path(path)
        self.rows: list[Row] = [dict(row) for row in history]

    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        pass

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        row: Row = {
            key: value.item() if isinstance(value, torch.Tensor) else value
            for key, value in metrics.items()
        }
        row["step"] = len(self.rows) if step is None else step
        self.rows.append(row)

    @rank_zero_only
    def save(self) -> None:
        """Lightning calls this right after every ``log_metrics``: a kill loses no row."""
        write_text_atomic(self.path, log_text(self.rows))


def log_text(rows: Sequence[Row]) -> str:
    """The CSV text of ``rows``."""
    keys = sorted(set().union(*rows)) if rows else ["step"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def log_history(path: str | Path, before_step: int) -> list[Row]:
    """The rows of the log at ``path`` with step < ``before_step``: those a run resumed from a
    checkpoint at that global step will not log again (none when there is no log)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        rows = [
            {key: _number(text) for key, text in row.items() if text}
            for row in csv.DictReader(handle)
        ]
    return [row for row in rows if "step" in row and row["step"] < before_step]


def _number(text: str) -> float | int:
    """The value as logged: ints (epoch, step) stay ints, floats round-trip exactly."""
    try:
        return int(text)
    except ValueError:
        return float(text)
