"""Packing acquired sample stores into train / val / test datasets (schema: ``datasets``).

Splits are assigned **by simulated sample**: every acquired store of one (family, seed) pair, e.g.
the same phantom at several noise levels, lands in the same split, so no phantom leaks between
training and testing. Within each family the samples are shuffled by a stream seeded from
(split seed, family) and cut by the fractions (largest remainder), stratified so that every split
with a positive fraction gets each family when the family has enough samples. The split depends
on the split seed and the set of (family, seed) pairs only, not on the order stores are given.
"""

from __future__ import annotations

import logging
import math
import platform
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from dime_pipeline import __version__
from dime_pipeline.datasets import write_pack
from dime_pipeline.errors import UserError
from dime_pipeline.seeding import generator, sample_seed
from dime_pipeline.store import read_sample

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


@dataclass(frozen=True)
class StoreInfo:
    """What packing needs to know about a store before reading its arrays."""

    path: Path
    family: str
    seed: int
    shape: tuple[int, ...]
    config_hash: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.family, self.seed)


def inspect_store(path: Path) -> StoreInfo:
    sample = read_sample(path)
    if sample.measured is None or "acquisition" not in sample.attrs:
        raise UserError(f"{path}: not an acquired store (run `dime-pipeline acquire` first)")
    return StoreInfo(
        path=Path(path),
        family=str(sample.attrs["family"]),
        seed=int(sample.attrs["seed"]),
        shape=sample.displacement.shape,
        config_hash=str(sample.attrs["config_hash"]),
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
    """Write ``out_dir/{train,val,test}.zarr``; every check runs before anything is written."""
    check_fractions(fractions)
    if seed < 0:
        raise UserError(f"split seed must be >= 0 (got {seed})")
    infos = _inspect_all(stores)
    config_hash = _common_config_hash(infos, config_hash)
    families = sorted({info.family for info in infos})
    assignment = assign_splits([info.key for info in infos], fractions, seed)
    rows = sorted(infos, key=lambda info: (info.family, info.seed, str(info.path)))
    provenance = {
        "families": families,
        "config_hash": config_hash,
        "versions": package_versions(),
        "split_seed": seed,
        "fractions": list(fractions),
    }
    written = {}
    for split in SPLITS:
        members = [info for info in rows if assignment[info.key] == split]
        arrays, attrs = _stack(members, infos[0].shape, families)
        write_pack(Path(out_dir) / f"{split}.zarr", arrays, {**provenance, **attrs, "split": split})
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
    infos = [inspect_store(Path(path)) for path in stores]
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


def _stack(
    members: Sequence[StoreInfo], shape: tuple[int, ...], families: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The pack's arrays for ``members`` (read one store at a time) and per-row provenance."""
    n, spatial = len(members), shape[1:]
    arrays = {
        "measured": np.zeros((n, *shape), np.complex64),
        "displacement": np.zeros((n, *shape), np.complex64),
        "modulus": np.zeros((n, *spatial), np.complex64),
        "mask": np.zeros((n, *spatial), bool),
        "labels": np.zeros((n, *spatial), np.int16),
        "frequency_hz": np.zeros(n),
        "voxel_size_m": np.zeros((n, len(spatial))),
        "density_kg_m3": np.zeros(n),
        "snr": np.zeros(n),
        "family": np.zeros(n, np.int16),
        "seed": np.zeros(n, np.int64),
    }
    sources, acquisition_seeds = [], []
    for row, info in enumerate(members):
        sample = read_sample(info.path)
        for name in ("measured", "displacement", "modulus", "mask", "labels"):
            arrays[name][row] = getattr(sample, name)
        attrs, snr = sample.attrs, sample.attrs["acquisition"]["snr"]
        arrays["frequency_hz"][row] = attrs["frequency_hz"]
        arrays["voxel_size_m"][row] = attrs["voxel_size_m"]
        arrays["density_kg_m3"][row] = attrs["density_kg_m3"]
        arrays["snr"][row] = np.inf if snr is None else snr
        arrays["family"][row] = families.index(info.family)
        arrays["seed"][row] = info.seed
        sources.append(str(info.path))
        acquisition_seeds.append(attrs["acquisition"]["seed"])
    return arrays, {"sources": sources, "acquisition_seeds": acquisition_seeds}


def package_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "zarr": zarr.__version__,
        "dime_pipeline": __version__,
    }
