"""What a killed training run leaves behind, so that rerunning it continues exactly.

- :class:`AtomicCheckpointIO`: checkpoints are written to a sibling and renamed. Lightning's own
  save goes through a temporary file in ``$TMPDIR`` and ``shutil.move``, which is a plain copy
  (a kill leaves a truncated ``last.ckpt``) when ``$TMPDIR`` is another file system, e.g.
  node-local scratch on a cluster.
- :func:`load_checkpoint`: every checkpoint is read weights-only (tensors and plain types, never
  pickled code), by ``dime-pipeline train`` and by Lightning (:class:`AtomicCheckpointIO`), so a
  file planted in ``checkpoints/`` cannot run code; one that needs more is refused.
- :class:`MetricsLog`: the CSV log (Lightning's ``CSVLogger`` format) rewritten whole and
  atomically at every logging call, so a kill loses no row. It lives next to the checkpoints,
  not in the exported ``logs/metrics.csv``: Snakemake deletes the outputs of a killed job
  before rerunning it, and the log must outlive that to continue. A resumed run takes over the
  rows logged before its checkpoint (:func:`log_history`) and logs the rest itself.
"""

from __future__ import annotations

import csv
import io
import pickle
import re
from argparse import Namespace
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import Logger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only

from dime_pipeline.dime.model_file import save_torch_atomic
from dime_pipeline.errors import UserError
from dime_pipeline.textio import write_text_atomic

Row = dict[str, float | int]

# Types besides tensors and plain containers/scalars that the checkpoints of a DimeModule need
# to load weights-only. None, measured with Lightning 2.6 / torch 2.14 (cosine, onecycle and
# constant schedules, epoch-end and mid-epoch checkpoints): the hyperparameters are plain dicts,
# LambdaLR stores no function, ModelCheckpoint stores paths as text and scores as tensors.
CHECKPOINT_SAFE_GLOBALS: tuple[Any, ...] = ()


def load_checkpoint(path: str | Path, failure: str = "cannot load it") -> dict[str, Any]:
    """A checkpoint read weights-only on the CPU; UserError (one line naming it, suggesting
    ``--fresh``) for one that cannot be: pickled objects beyond tensors and plain types (code
    could run), or a damaged or foreign file (``failure`` says what could not be done)."""
    try:
        with torch.serialization.safe_globals(list(CHECKPOINT_SAFE_GLOBALS)):
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a zip or unpickling error: damaged, foreign or planted
        found = re.search(r"GLOBAL (\S+)", str(error))
        if isinstance(error, pickle.UnpicklingError) and found:
            raise UserError(
                f"{path}: refused: it pickles {found.group(1)}, not only weights (loading it "
                "could run code); remove it or use --fresh to start over"
            ) from None
        raise UserError(
            f"{path}: {failure} ({type(error).__name__}); remove it or use --fresh to start over"
        ) from None
    if not isinstance(saved, dict):
        raise UserError(
            f"{path}: {failure} (a {type(saved).__name__}, not a checkpoint); "
            "remove it or use --fresh to start over"
        )
    return saved


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a hidden sibling, then rename; loads only weights-only, whatever
    Lightning asks for (see the module docstring)."""

    def load_checkpoint(
        self, path: str | Path, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path, "cannot resume from it")

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        save_torch_atomic(checkpoint, path)


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
