# Config validation and the helpers every rule file shares.
import json
import os
import sys
from pathlib import Path

import yaml

import dime_pipeline
from dime_pipeline.config import FAMILIES, PHANTOM_KEYS, dump_config, validate_config
from dime_pipeline.errors import UserError
from dime_pipeline.seeding import sample_seed
from dime_pipeline.commands.acquire import params_to_argv
from dime_pipeline.evaluation.labels import FIGURE_KINDS
from dime_pipeline.inversion.methods import METHODS
from dime_pipeline.shards import (
    PREVIEW_INDEX,
    SamplePaths,
    acquire_seed,
    acquisition_params,
    snr_label,
)
from dime_pipeline.textio import write_text_atomic

# Jobs find `dime-pipeline` (and mpiexec) on the PATH. Put the bin folder of the Python running
# Snakemake first, so that `.venv/bin/snakemake` works without an activated venv; jobs inherit
# the environment (SLURM jobs too, which the executor submits with `sbatch --export=ALL`).
_PYTHON_BIN = str(Path(sys.executable).parent)
_PATH = os.environ.get("PATH", "")
if Path(_PYTHON_BIN, "dime-pipeline").exists() and not _PATH.startswith(_PYTHON_BIN + os.pathsep):
    os.environ.update(PATH=f"{_PYTHON_BIN}{os.pathsep}{_PATH}")

try:
    SETTINGS = validate_config(config)
except UserError as error:
    sys.exit(f"dime-pipeline: {error}")


wildcard_constraints:
    family="|".join(FAMILIES),
    index=r"\d{4}",
    snr=r"inf|\d+(\.\d+)?",


RESOLVED_CONFIG = "results/config.yaml"
SHARD_SIZE = SETTINGS.workflow.shard_size


def pin_mtime(path):
    """Date `path` to the epoch. The config and the warm-up record are read by every phantom and
    solve, and a rewrite must not rerun them by time (their own params decide). Snakemake's
    `ancient()` would say so too, but a job behind an ancient edge is never checked when the
    file's producer has to run (Snakemake 9 masks it, and the ancient edge stops the spread):
    after a kill during the warm-up, a rerun ran the warm-up alone and exited 0 with no study.
    A pinned time keeps the edge ordinary, so a producer's run does reach its readers. (A file
    a job writes is dated by Snakemake after the job, before its readers run: only the files
    written outside jobs, here, are pinned.)"""
    os.utime(path, (0, 0))


TRAINING_CONFIG = "results/training.yaml"


def write_resolved_config(path):
    """Write the validated config to `path` unless it holds exactly that already, and its
    `dime.training` section to TRAINING_CONFIG (what `dime-pipeline train --config` reads)."""
    write_pinned(path, dump_config(SETTINGS))
    training = SETTINGS.dime.training.model_dump(mode="json")
    write_pinned(TRAINING_CONFIG, yaml.safe_dump(training, sort_keys=False))


def sample_ids():
    """(family, index) of every sample of the study, in a stable order."""
    return [
        (family, f"{index:04d}")
        for family, count in SETTINGS.samples.items()
        for index in range(count)
    ]


def seed_of(wildcards):
    return sample_seed(SETTINGS.seed, wildcards.family, int(wildcards.index))


def store_list(kind):
    """The file listing the study's stores of `kind` (samples, acquired), one per line: the
    commands read it as @FILE, since 10⁴ paths exceed the kernel's limit for a command line."""
    return f"results/lists/{kind}.txt"


def write_pinned(path, text):
    """Write `text` to `path` unless it holds exactly that already; date it to the epoch."""
    if not (Path(path).is_file() and Path(path).read_text() == text):
        write_text_atomic(path, text)
    pin_mtime(path)


def write_store_lists():
    """The store lists follow from the config alone: they are written when the Snakefile is
    read, not by a job (a job of Python's `run:` costs Snakemake a fresh process reading the
    whole workflow, about 3 s: measured). Dated to the epoch: what reruns `summarize` and
    `pack` is their set of input stores, which the lists only repeat."""
    write_pinned(store_list("samples"), "".join(f"{store}\n" for store in all_stores()))
    write_pinned(store_list("acquired"), "".join(f"{store}\n" for store in all_acquired()))


def shard_plan():
    """(family, shard number, sample indices) of every shard: `shard_size` consecutive
    samples of one family, the last one shorter."""
    return [
        (family, start // SHARD_SIZE, list(range(start, min(start + SHARD_SIZE, count))))
        for family, count in SETTINGS.samples.items()
        for start in range(0, count, SHARD_SIZE)
    ]


def shard_resources(samples):
    """A shard job's resources: MPI ranks as `simulate` has them, memory of one solve, the
    runtime of its samples; the profile's `set-resources: shard:` entries win (a shard rule
    has a name of its own, so the profile cannot name it)."""
    entries = workflow.resource_settings.overwrite_resources.get("shard") or {}
    given = {name: getattr(value, "raw", value) for name, value in entries.items()}
    minutes = max(10, 2 * samples)
    return {"mpi": "mpiexec", "tasks": SETTINGS.solver.ranks, "mem_mb": 4000,
            "runtime": minutes, **given}


def study_samples():
    """Where every sample of the study lives (`shards.SamplePaths`: the one layout)."""
    return [SamplePaths(family, int(index)) for family, index in sample_ids()]


def all_stores():
    return [str(sample.store) for sample in study_samples()]


WARM_UP_RECORD = "results/jit/warm-up.json"


def restore_lost_pinned_inputs():
    """Put back a lost warm-up record, dated to the epoch, in a study that already has solves:
    remade by its rule it would rerun every solve. The restored record says nothing was
    warmed; the solves compile what they need."""
    if SHARD_SIZE > 1:  # shards read no warm-up record
        return
    if not Path(WARM_UP_RECORD).exists() and any(Path(s).exists() for s in all_stores()):
        restored = {"restored": "the record was lost; nothing was warmed", "seconds": {}}
        write_text_atomic(WARM_UP_RECORD, json.dumps(restored, indent=2) + "\n")
        pin_mtime(WARM_UP_RECORD)
        print(f"dime-pipeline: restored the lost {WARM_UP_RECORD}", file=sys.stderr)


def snr_labels():
    """Wildcard values of the noise levels: 'inf' for noise-free, else the SNR."""
    return [snr_label(level) for level in SETTINGS.acquisition.snr]


def all_acquired():
    return [str(sample.acquired(label)) for sample in study_samples() for label in snr_labels()]


def acquire_seed_of(wildcards):
    return acquire_seed(SETTINGS.seed, wildcards.family, wildcards.snr, int(wildcards.index))


# Options reach the shell as lists of words that the rules quote one by one (`{params.x:q}`):
# no config value is ever read by the shell, whatever characters it holds.


def acquire_arguments(wildcards):
    """The `acquire` options of one noise level: those of the study's one acquisition mapping
    (shards.acquisition_params, which the shards use too), written back as options."""
    levels = {snr_label(level): level for level in SETTINGS.acquisition.snr}
    return params_to_argv(acquisition_params(SETTINGS, levels[wildcards.snr]))


def pack_fractions():
    fractions = SETTINGS.datasets.fractions
    return [str(fractions.train), str(fractions.val), str(fractions.test)]


EVALUATED_METHODS = METHODS  # every inversion method, DIME first
BASELINE_METHODS = tuple(m for m in METHODS if m != "dime")
TRAINED_MODEL = "results/dime/model.pt"


def dime_model_input():
    """The trained model when the study trains one; nothing (the shipped model) otherwise."""
    return [TRAINED_MODEL] if SETTINGS.dime.model == "trained" else []


def dime_model_option():
    return ["--model", TRAINED_MODEL] if SETTINGS.dime.model == "trained" else []


# The shipped model comes with its training log, so the report always shows the curves of the
# model behind the DIME maps.
SHIPPED_TRAINING_LOG = Path(dime_pipeline.__file__).parent / "dime/pretrained/dime-default.metrics.csv"


def training_log_input():
    if SETTINGS.dime.model == "trained":
        return ["results/dime/logs/metrics.csv"]
    return [str(SHIPPED_TRAINING_LOG)] if SHIPPED_TRAINING_LOG.is_file() else []


def figure_folder(kind, patterns, subcategory, labels):
    """A folder of evaluation figures; `snakemake --report` shows each file with its caption."""
    return report(
        directory(f"results/figures/{kind}"),
        patterns=patterns,
        caption=f"../report/{kind}.rst",
        category="Evaluation",
        subcategory=subcategory,
        labels=labels,
    )


def preview_images():
    """The preview of each family's first phantom (rule `preview`), for the report."""
    return [
        f"results/previews/{family}.png"
        for family, count in SETTINGS.samples.items()
        if count > PREVIEW_INDEX
    ]
