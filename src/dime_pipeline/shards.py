"""Shards: a batch of samples of one family made in one process, from phantom to acquired stores.

A study's sample ``index`` of ``family`` is the phantom folder ``meshes/FAMILY/INDEX``, the sample
store ``results/samples/FAMILY/INDEX.zarr`` and one acquired store per noise level
``results/acquired/FAMILY/INDEX/snr-LEVEL.zarr``, plus a log per stage under ``results/logs``.
The one-sample rules (``phantom``, ``simulate``, ``acquire``) and a shard write exactly these
outputs, from the same seeds and parameters defined here, so packing, evaluation and reports
do not know which made them (timings aside, the files are byte-identical).

A shard pays for its process once: imports, MPI and PETSc set-up, the JIT kernels (loaded on
the first solve, then served from memory). Every sample is still written atomically, one after
the other, so a killed shard leaves whole samples and no half-written one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dime_pipeline.config import PipelineConfig
from dime_pipeline.errors import UserError
from dime_pipeline.progressbar import each
from dime_pipeline.seeding import sample_seed

if TYPE_CHECKING:
    from dime_pipeline.acquisition import AcquisitionParams

log = logging.getLogger(__name__)

PREVIEW_INDEX = 0  # the report shows each family's first phantom (the workflow's rule `preview`)


def snr_label(level: float | None) -> str:
    """The path label of a noise level: ``inf`` for noise-free, else the SNR (``10``, ``2.5``),
    written so that it reads back as the very level (``12.3456789``, not ``12.3457``): two
    levels never share a label."""
    if level is None:
        return "inf"
    short = f"{level:g}"
    return short if float(short) == level else repr(level)


def acquire_seed(root_seed: int, family: str, label: str, index: int) -> int:
    """Independent noise per sample and level, reproducible from the root seed."""
    return sample_seed(root_seed, f"acquire:{family}:snr-{label}", index)


@dataclass(frozen=True)
class SamplePaths:
    """Where sample ``index`` of ``family`` lives in a study folder."""

    family: str
    index: int
    root: Path = Path(".")

    @property
    def name(self) -> str:
        return f"{self.index:04d}"

    @property
    def phantom(self) -> Path:
        return self.root / "meshes" / self.family / self.name

    @property
    def store(self) -> Path:
        return self.root / "results" / "samples" / self.family / f"{self.name}.zarr"

    def acquired(self, label: str) -> Path:
        return self.root / "results" / "acquired" / self.family / self.name / f"snr-{label}.zarr"

    def log(self, stage: str, label: str | None = None) -> Path:
        """The stage's log: ``phantom``, ``simulate`` or ``acquire`` (per noise level)."""
        folder = self.root / "results" / "logs" / stage / self.family
        if label is None:
            return folder / f"{self.name}.log"
        return folder / self.name / f"snr-{label}.log"


def acquisition_params(config: PipelineConfig, level: float | None) -> AcquisitionParams:
    """The acquisition of the study at one noise level (what the ``acquire`` rule passes)."""
    from dime_pipeline.acquisition import AcquisitionParams

    a = config.acquisition
    strain = a.snr_definition == "strain"
    return AcquisitionParams(
        average=a.average,
        mask_fraction=a.mask_fraction,
        offsets=a.offsets,
        peak_phase_rad=a.peak_phase_rad,
        snr=level,
        snr_definition="strain" if strain and level is not None else "amplitude",
        wrap_rad=a.wrap_rad,
        components=a.components,
        compressional=a.compressional,
        bulk=a.bulk,
        compressional_speed_m_s=a.compressional_speed_m_s,
    )


def run_shard(
    config: PipelineConfig,
    family: str,
    indices: Sequence[int],
    jit_cache: Path,
    options,  # fem.solvers.SolverOptions
    root: Path = Path("."),
) -> dict[str, float]:
    """Make samples ``indices`` of ``family`` (phantom, solve, every noise level) on
    ``MPI.COMM_WORLD``; rank 0 writes. Returns seconds per stage summed over the shard.

    A sample that fails ends the shard with one line naming it (the samples before it stay
    written); nothing is skipped silently."""
    from dime_pipeline.fem.backend import MPI
    from dime_pipeline.fem.simulate import simulate

    comm = MPI.COMM_WORLD
    stages: dict[str, float] = {}
    for position, index in enumerate(each(indices, f"{family} samples")):
        paths = SamplePaths(family, index, root)
        # The first solve compiles or loads the kernels: one shard at a time per cache, so
        # shards started together on a cold cache do not all compile (the workflow has no
        # warm-up job before shards; FFCx's own per-form wait gives up after 10 s)
        first = position == 0 and comm.rank == 0
        try:
            _one_sample(config, paths, jit_cache, options, comm, simulate, stages, first)
        except UserError as error:
            raise UserError(f"sample {family}/{paths.name}: {error}") from None
    return stages


@contextlib.contextmanager
def _jit_lock(jit_cache: Path) -> Iterator[None]:
    """An exclusive lock on ``jit_cache``'s lock file while the block runs (waits for it).
    Where the file system has no locks (ENOLCK, some network mounts), FFCx's own per-form
    lock files are all there is: said once in the log."""
    import fcntl

    folder = Path(jit_cache).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".dime-pipeline.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as error:
            log.warning(
                "no lock on the JIT cache %s (%s): shards may compile at once", folder, error
            )
        yield


def _one_sample(config, paths, jit_cache, options, comm, simulate, stages, lock) -> None:
    from dime_pipeline.acquisition import acquire
    from dime_pipeline.phantoms import make_phantom
    from dime_pipeline.store import read_sample, write_sample

    seed = sample_seed(config.seed, paths.family, paths.index)
    start = time.perf_counter()
    if comm.rank == 0:
        with _logged_to(paths.log("phantom")):
            make_phantom(paths.family, seed, config, paths.phantom, preview=False)
    comm.barrier()
    _add(stages, "phantom", time.perf_counter() - start)

    with (
        _logged_to(paths.log("simulate") if comm.rank == 0 else None),
        _jit_lock(jit_cache) if lock else contextlib.nullcontext(),
    ):
        timings = simulate(paths.phantom, paths.store, jit_cache, options)
    for stage, seconds in timings.items():
        if stage != "total":
            _add(stages, f"simulate_{stage}", seconds)

    if comm.rank == 0:
        start = time.perf_counter()
        sample = read_sample(paths.store)
        for level in config.acquisition.snr:
            label = snr_label(level)
            with _logged_to(paths.log("acquire", label)):
                params = acquisition_params(config, level)
                noise_seed = acquire_seed(config.seed, paths.family, label, paths.index)
                acquired = acquire(sample, params, noise_seed)
                acquired.attrs["acquisition"]["source"] = str(paths.store.relative_to(paths.root))
                write_sample(paths.acquired(label), acquired)
        _add(stages, "acquire", time.perf_counter() - start)
    comm.barrier()


def _add(stages: dict[str, float], name: str, seconds: float) -> None:
    stages[name] = stages.get(name, 0.0) + seconds


@contextlib.contextmanager
def _logged_to(path: Path | None) -> Iterator[None]:
    """Copy the package's log records to ``path`` (the stage's own log, as its one-sample rule
    writes it) while the block runs."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("dime_pipeline")
    package.addHandler(handler)
    try:
        yield
    finally:
        package.removeHandler(handler)
        handler.close()


def write_record(path: Path, record: dict) -> None:
    from dime_pipeline.textio import write_text_atomic

    write_text_atomic(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
