"""Packing acquired sample stores into train / val / test datasets (schema: ``datasets``).

Splits are assigned **by simulated sample**: every acquired store of one (family, seed) pair, e.g.
the same phantom at several noise levels, lands in the same split, so no phantom leaks between
training and testing. Within each family the samples are shuffled by a stream seeded from
(split seed, family) and cut by the fractions (largest remainder), stratified so that every split
with a positive fraction gets each family when the family has enough samples. The split depends
on the split seed and the set of (family, seed) pairs only, not on the order stores are given.

Each row keeps its store's family and wave pattern (``family`` and ``pattern`` codes into the
pack attributes ``families`` and ``patterns``; a store without ``wave_pattern`` gets what its
family was before wave patterns: :func:`dime_pipeline.store.wave_pattern_of`).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dime_pipeline.datasets import write_pack_rows
from dime_pipeline.errors import UserError
from dime_pipeline.progressbar import each
from dime_pipeline.provenance import package_versions
from dime_pipeline.seeding import generator, sample_seed
from dime_pipeline.store import read_sample, read_sample_header, wave_pattern_of

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
PACK_PACKAGES = ("numpy", "zarr", "dime_pipeline")  # versions recorded in a pack


@dataclass(frozen=True)
class StoreInfo:
    """What packing needs to know about a store before reading its arrays."""

    path: Path
    family: str
    seed: int
    shape: tuple[int, ...]
    config_hash: str
    acquisition_seed: int
    wave_pattern: str  # one of store.WAVE_PATTERNS

    @property
    def key(self) -> tuple[str, int]:
        return (self.family, self.seed)


def inspect_store(path: Path) -> StoreInfo:
    attrs, shapes = read_sample_header(path)
    if "measured" not in shapes or "acquisition" not in attrs:
        raise UserError(f"{path}: not an acquired store (run `dime-pipeline acquire` first)")
    return StoreInfo(
        path=Path(path),
        family=str(attrs["family"]),
        seed=int(attrs["seed"]),
        shape=shapes["displacement"],
        config_hash=str(attrs["config_hash"]),
        acquisition_seed=int(attrs["acquisition"]["seed"]),
        wave_pattern=wave_pattern_of(attrs),
    )


def check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != len(SPLITS):
        raise UserError(f"need {len(SPLITS)} fractions ({', '.join(SPLITS)}), got {fractions}")
    if any(not (math.isfinite(f) and f >= 0) for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise UserError(f"fractions must be >= 0 and sum to 1 (got {list(fractions)})")


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """How many of ``n`` samples each split gets: largest remainder, then at least one each."""
    exact = [f * n for f in fractions]
    counts = [math.floor(x + 1e-9) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    wanted = [i for i, f in enumerate(fractions) if f > 0]
    if n >= len(wanted):
        for i in wanted:
            if counts[i] == 0:
                donor = counts.index(max(counts))
                counts[donor] -= 1
                counts[i] += 1
    return counts


def assign_splits(
    keys: Sequence[tuple[str, int]], fractions: Sequence[float], seed: int
) -> dict[tuple[str, int], str]:
    """Split name of every (family, seed) sample, stratified by family."""
    by_family: dict[str, list[int]] = defaultdict(list)
    for family, sample in sorted(set(keys)):
        by_family[family].append(sample)
    assignment = {}
    for family, samples in by_family.items():
        order = generator(sample_seed(seed, family, 0)).permutation(len(samples))
        counts = split_counts(len(samples), fractions)
        names = [name for name, count in zip(SPLITS, counts, strict=True) for _ in range(count)]
        for position, name in zip(order, names, strict=True):
            assignment[family, samples[position]] = name
    return assignment


def pack_stores(
    stores: Sequence[Path],
    out_dir: Path,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    config_hash: str | None = None,
) -> dict[str, list[Path]]:
    """Write ``out_dir/{train,val,test}.zarr``; every check runs before anything is written.

    Every store's header is checked against all the others before any array is read; then each
    is read once and copied, so memory holds one sample at a time, not a split.
    """
    check_fractions(fractions)
    if seed < 0:
        raise UserError(f"split seed must be >= 0 (got {seed})")
    infos = _inspect_all(stores)
    config_hash = _common_config_hash(infos, config_hash)
    families = sorted({info.family for info in infos})
    patterns = sorted({info.wave_pattern for info in infos})
    assignment = assign_splits([info.key for info in infos], fractions, seed)
    rows = sorted(infos, key=lambda info: (info.family, info.seed, str(info.path)))
    provenance = {
        "families": families,
        "patterns": patterns,
        "config_hash": config_hash,
        "versions": package_versions(*PACK_PACKAGES),
        "split_seed": seed,
        "fractions": list(fractions),
    }
    written = {}
    for split in SPLITS:
        members = [info for info in rows if assignment[info.key] == split]
        attrs = {
            **provenance,
            "sources": [str(info.path) for info in members],
            "acquisition_seeds": [info.acquisition_seed for info in members],
            "split": split,
        }
        path = Path(out_dir) / f"{split}.zarr"
        member_rows = _rows(members, families, patterns)
        write_pack_rows(path, len(members), infos[0].shape, member_rows, attrs)
        written[split] = [info.path for info in members]
        log.info("%s: %d stores", split, len(members))
    return written


def _inspect_all(stores: Sequence[Path]) -> list[StoreInfo]:
    if not stores:
        raise UserError("no stores to pack")
    seen = set()
    for path in stores:
        if Path(path).resolve() in seen:
            raise UserError(f"{path}: given twice")
        seen.add(Path(path).resolve())
    infos = [inspect_store(Path(path)) for path in each(stores, "stores checked")]
    first = infos[0]
    for info in infos[1:]:
        if info.shape != first.shape:
            raise UserError(
                f"{info.path}: displacement shape {info.shape} differs from {first.shape} of "
                f"{first.path}; stores in one pack must share a shape"
            )
    return infos


def _common_config_hash(infos: Sequence[StoreInfo], given: str | None) -> str:
    if given is not None:
        return given
    hashes = sorted({info.config_hash for info in infos})
    if len(hashes) > 1:
        raise UserError(f"stores come from different configs {hashes}; pass --config-hash")
    return hashes[0]


def _rows(
    members: Sequence[StoreInfo], families: list[str], patterns: list[str]
) -> Iterator[dict[str, Any]]:
    """Every pack array of each member in turn, reading one store at a time."""
    for info in members:
        sample = read_sample(info.path)
        attrs, snr = sample.attrs, sample.attrs["acquisition"]["snr"]
        yield {
            "measured": sample.measured,
            "displacement": sample.displacement,
            "modulus": sample.modulus,
            "mask": sample.mask,
            "labels": sample.labels,
            "frequency_hz": attrs["frequency_hz"],
            "voxel_size_m": attrs["voxel_size_m"],
            "density_kg_m3": attrs["density_kg_m3"],
            "snr": np.inf if snr is None else snr,
            "family": families.index(info.family),
            "seed": info.seed,
            "pattern": patterns.index(info.wave_pattern),
        }
