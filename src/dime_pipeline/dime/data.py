"""Training data for DIME: random patches from packed datasets, and the LightningDataModule.

One item is one P×P crop of one sample ("row") of a pack (``dime_pipeline.datasets``):

- the row is drawn with weights that give every (family, noise level) group the same total
  weight, so a family with few samples or the noise-free level is not drowned out;
- the crop's centre is a random tissue pixel (for 3D rows, the crop is the axial slice through
  it); parts of the crop outside the image count as outside the mask, like at inference;
- one displacement component is chosen at random among those with signal in the crop (RMS at
  least ``min_component_fraction`` of the strongest), because components are inverted separately;
  for a network that sees K > 1 components at once, with odds ``single_component`` that one
  alone, else it and 1 … K − 1 others at random, whatever their strength (zero-filled to K);
- training crops are augmented by a random global phase e^{iθ} (U e^{iθ} solves the same
  equation), the 8 rotations and flips of the square, and a small gain per channel.

Every crop is a pure function of (seed, stream, key): the sampler hands out keys
epoch·n … epoch·n + n − 1, so an epoch's crops do not depend on the number of workers, on
their scheduling, nor on whether the run was resumed; validation uses the same keys each epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dime_pipeline.datasets import Pack
from dime_pipeline.dime.normalization import dimensionless_log_modulus, physics_scale
from dime_pipeline.dime.settings import DataConfig
from dime_pipeline.errors import UserError
from dime_pipeline.store import read_errors

log = logging.getLogger(__name__)

TRAIN_STREAM, VAL_STREAM = 0, 1


class _Rows:
    """The rows (samples) of one or more packs, their metadata and their tissue pixels."""

    def __init__(self, paths: Sequence[Path], input_array: str, preload_mb: float) -> None:
        packs = [Pack(path) for path in paths]
        self.paths = [Path(path) for path in paths]
        self.sources = [(p, i) for p, pack in enumerate(packs) for i in range(len(pack))]
        if not self.sources:
            raise UserError(f"{', '.join(map(str, paths))}: no samples to train on")
        columns = [{name: pack.column(name) for name in _COLUMNS} for pack in packs]
        self.family = np.concatenate(
            [np.asarray(pack.families)[c["family"]] for pack, c in zip(packs, columns, strict=True)]
        )
        self.snr = np.concatenate([c["snr"] for c in columns])
        self.scale = np.array(
            [
                physics_scale(c["frequency_hz"][i], c["voxel_size_m"][i], c["density_kg_m3"][i])
                for c in columns
                for i in range(len(c["snr"]))
            ]
        )
        self.arrays = [_open_arrays(pack, input_array, preload_mb, packs) for pack in packs]
        self.spatial = [arrays["mask"].shape[1:] for arrays in self.arrays]
        masks = [np.asarray(arrays["mask"][...]) for arrays in self.arrays]
        self.centres = [np.flatnonzero(masks[p][i]) for p, i in self.sources]

    def __len__(self) -> int:
        return len(self.sources)

    def crop(
        self, row: int, centre: tuple[int, ...], size: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(field (C, P, P) complex, mask (P, P) bool, modulus (P, P) complex), zero-padded."""
        pack, index = self.sources[row]
        arrays = self.arrays[pack]
        shape = self.spatial[pack][-2:]
        lead = tuple(centre[:-2])  # the slice index of a 3D row
        source, target = [], []
        for c, n in zip(centre[-2:], shape, strict=True):
            start = c - size // 2
            source.append(slice(max(start, 0), min(start + size, n)))
            target.append(slice(max(start, 0) - start, min(start + size, n) - start))
        n_components = arrays["field"].shape[1]
        field = np.zeros((n_components, size, size), np.complex64)
        mask = np.zeros((size, size), bool)
        modulus = np.zeros((size, size), np.complex64)
        with read_errors(self.paths[pack], "packed dataset"):  # lazy Zarr reads (large packs)
            field[(slice(None), *target)] = arrays["field"][(index, slice(None), *lead, *source)]
            mask[tuple(target)] = arrays["mask"][(index, *lead, *source)]
            modulus[tuple(target)] = arrays["modulus"][(index, *lead, *source)]
        return field, mask, modulus


_COLUMNS = ("family", "snr", "frequency_hz", "voxel_size_m", "density_kg_m3")


def _open_arrays(
    pack: Pack, input_array: str, preload_mb: float, packs: Sequence[Pack]
) -> dict[str, Any]:
    """The pack's field, mask and modulus: numpy arrays when all packs fit in ``preload_mb``."""
    names = {"field": input_array, "mask": "mask", "modulus": "modulus"}
    arrays = {key: pack.arrays[name] for key, name in names.items()}
    total = sum(p.arrays[n].nbytes for p in packs for n in names.values())
    if total <= preload_mb * 2**20:
        arrays = {key: pack.column(name) for key, name in names.items()}
    return arrays


def noise_levels(snr: np.ndarray, bins: int) -> np.ndarray:
    """Integer noise level per row: ``bins`` for noise-free (inf), else a quantile bin of SNR."""
    levels = np.full(snr.shape, bins, dtype=np.int64)
    finite = np.isfinite(snr)
    if not finite.any():
        return levels
    values = np.unique(snr[finite])
    if len(values) <= bins:  # few distinct levels: one group each
        levels[finite] = np.searchsorted(values, snr[finite])
        return levels
    edges = np.unique(np.quantile(np.log(snr[finite]), np.linspace(0, 1, bins + 1)[1:-1]))
    levels[finite] = np.digitize(np.log(snr[finite]), edges)
    return levels


def balanced_weights(
    family: np.ndarray, snr: np.ndarray, bins: int, usable: np.ndarray | None = None
) -> np.ndarray:
    """Row probabilities giving every (family, noise level) group the same total weight."""
    usable = np.ones(len(family), bool) if usable is None else usable
    keys = np.char.add(np.asarray(family, dtype=str), np.char.mod("|%d", noise_levels(snr, bins)))
    _, group, counts = np.unique(keys[usable], return_inverse=True, return_counts=True)
    weights = np.zeros(len(family))
    weights[usable] = 1.0 / counts[group]
    return weights / weights.sum()


class PatchDataset(Dataset):
    """Random crops (see the module docstring); ``__getitem__(key)`` is deterministic in key."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        patch_size: int,
        length: int,
        seed: int,
        stream: int,
        config: DataConfig,
        augment: bool,
        components: int = 1,
    ) -> None:
        self.rows = _Rows([Path(p) for p in paths], config.input_array, config.preload_mb)
        usable = np.array([len(c) > 0 for c in self.rows.centres])
        if not usable.any():
            raise UserError(f"{', '.join(map(str, paths))}: no sample has tissue in its mask")
        self.weights = balanced_weights(self.rows.family, self.rows.snr, config.snr_bins, usable)
        self.family_codes = np.unique(self.rows.family, return_inverse=True)[1]
        self.patch_size, self.length, self.seed, self.stream = patch_size, length, seed, stream
        self.config, self.augment, self.components = config, augment, components

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.stream, int(key)])
        row = int(rng.choice(len(self.weights), p=self.weights))
        flat = self.rows.centres[row]
        pack = self.rows.sources[row][0]
        centre = np.unravel_index(flat[rng.integers(len(flat))], self.rows.spatial[pack])
        fields, mask, modulus = self.rows.crop(row, tuple(int(c) for c in centre), self.patch_size)
        field = np.zeros((self.components, *mask.shape), fields.dtype)
        chosen = _pick_components(fields, mask, self.config, self.components, rng)
        field[: len(chosen)] = fields[chosen]
        if self.augment:
            field, mask, modulus = _augment(field, mask, modulus, rng)
            if self.config.ramps and rng.random() < self.config.ramps:  # off: crops as before
                field[: len(chosen)] = [
                    add_ramp(part, mask, rng, self.config.ramp_max) for part in field[: len(chosen)]
                ]
            if rng.random() < self.config.mask_holes:
                mask = punch_mask(mask, rng)
        return self._item(row, field, mask, modulus, rng)

    def _item(
        self,
        row: int,
        field: np.ndarray,
        mask: np.ndarray,
        modulus: np.ndarray,
        rng: np.random.Generator,
    ) -> dict[str, torch.Tensor]:
        """``field`` (K, P, P) complex; the item's field is (2K, P, P): re₀, im₀, re₁, …"""
        peak = np.abs(field).max()
        field = field / peak if peak > 0 else field  # keeps float32 well scaled; scale-free anyway
        channels = np.stack([field.real, field.imag], axis=1).reshape(-1, *field.shape[1:])
        if self.augment and self.config.channel_gain_jitter > 0:
            bound = np.log1p(self.config.channel_gain_jitter)
            channels = channels * np.exp(rng.uniform(-bound, bound, size=(len(channels), 1, 1)))
        scale = self.rows.scale[row]
        log_magnitude, phase = dimensionless_log_modulus(modulus, scale)
        valid = mask & (np.abs(modulus) > 0)
        return {
            "field": torch.as_tensor(channels, dtype=torch.float32),
            "mask": torch.as_tensor(mask[None], dtype=torch.float32),
            "valid": torch.as_tensor(valid[None], dtype=torch.float32),
            "target": torch.as_tensor(np.stack([log_magnitude, phase]), dtype=torch.float32),
            "log_scale": torch.tensor(np.log(scale), dtype=torch.float32),
            "family": torch.tensor(self.family_codes[row], dtype=torch.int64),
        }


def _pick_components(
    fields: np.ndarray, mask: np.ndarray, config: DataConfig, slots: int, rng: np.random.Generator
) -> list[int]:
    """The crop's components for a network with ``slots`` component slots: one drawn among those
    whose RMS in the crop's tissue is near the strongest; with more slots, unless the crop is to
    show one (odds ``single_component``), also 1 … slots − 1 of the others at random."""
    values = fields[:, mask]
    rms = np.sqrt(np.mean(np.abs(values - values.mean(axis=1, keepdims=True)) ** 2, axis=1))
    peak = rms.max()
    near = rms >= config.min_component_fraction * peak
    candidates = np.flatnonzero(near) if peak > 0 else np.arange(len(rms))
    first = int(rng.choice(candidates))
    most = min(slots, len(fields))
    if most == 1 or rng.random() < config.single_component:
        return [first]
    rest = [c for c in range(len(fields)) if c != first]
    others = rng.choice(rest, int(rng.integers(1, most)), replace=False)
    return [first, *(int(c) for c in others)]


def _augment(
    field: np.ndarray, mask: np.ndarray, modulus: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random global phase and one of the 8 symmetries of the square (isotropic media), applied
    to the last two axes (the field may have a leading component axis)."""
    field = field * np.exp(1j * rng.uniform(0, 2 * np.pi)).astype(np.complex64)
    turns, flip = int(rng.integers(4)), bool(rng.integers(2))
    out = []
    for array in (field, mask, modulus):
        array = np.rot90(array, turns, axes=(-2, -1))
        out.append(np.ascontiguousarray(array[..., ::-1] if flip else array))
    return out[0], out[1], out[2]


RAMP_RANGE = 30.0  # ramp RMS ratios are drawn from [ramp_max / RAMP_RANGE, ramp_max]


def add_ramp(
    field: np.ndarray, mask: np.ndarray, rng: np.random.Generator, ramp_max: float
) -> np.ndarray:
    """``field`` plus a complex linear ramp b·(x − x̄) + c·(y − ȳ) over the tissue, with a random
    direction and phase per part and an RMS of ρ × the field's RMS about its tissue mean, ρ
    log-uniform in [ramp_max / RAMP_RANGE, ramp_max]. Compressional waves (metres long) and bulk
    motion are constant plus such a ramp over a patch; the constant is normalised away, the ramp
    is not, and ∇² of a ramp is 0: the target is unchanged."""
    tissue = mask.astype(bool)
    if tissue.sum() < 2:
        return field
    size_y, size_x = field.shape
    y, x = np.mgrid[:size_y, :size_x].astype(np.float64)
    x -= x[tissue].mean()
    y -= y[tissue].mean()
    b, c = rng.normal(size=2) + 1j * rng.normal(size=2)
    ramp = b * x + c * y
    values = field[tissue]
    wave = np.sqrt(np.mean(np.abs(values - values.mean()) ** 2))
    size = np.sqrt(np.mean(np.abs(ramp[tissue]) ** 2))
    if not (wave > 0 and size > 0):
        return field
    ratio = ramp_max * np.exp(-rng.uniform(0.0, np.log(RAMP_RANGE)))
    return (field + (ratio * wave / size) * ramp * tissue).astype(field.dtype)


MIN_KEPT_FRACTION = 0.25  # holes and cuts keep at least this share of the crop's tissue


def punch_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The crop's mask with 1–3 disc holes (radius 1–4 px) or thin cuts (1–2 px wide), keeping
    at least ``MIN_KEPT_FRACTION`` of its tissue; or, one time in four, only a straight strip
    4–12 px wide through it, at least two crop edges' worth of pixels. Unchanged otherwise."""
    size = mask.shape[-1]
    y, x = np.mgrid[:size, :size].astype(np.float32)
    tissue = np.argwhere(mask)
    if len(tissue) == 0:
        return mask

    def line_distance() -> np.ndarray:
        cy, cx = tissue[rng.integers(len(tissue))]
        angle = rng.uniform(0, np.pi)
        return np.abs((y - cy) * np.cos(angle) - (x - cx) * np.sin(angle))

    if rng.random() < 0.25:
        strip = mask & (line_distance() < rng.uniform(2.0, 6.0))
        return strip if strip.sum() >= 2 * size else mask
    punched = mask.copy()
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.5:
            cy, cx = tissue[rng.integers(len(tissue))]
            punched &= (y - cy) ** 2 + (x - cx) ** 2 > rng.uniform(1.0, 4.0) ** 2
        else:
            punched &= line_distance() >= rng.uniform(0.5, 1.0)
    return punched if punched.sum() >= MIN_KEPT_FRACTION * mask.sum() else mask


class CropKeys(Sampler[int]):
    """Keys of one epoch's crops: epoch·n … epoch·n + n − 1, or 0 … n − 1 when ``fixed``.

    Lightning calls ``set_epoch`` at the start of every epoch; after a resume,
    ``dime.training`` sets it before the first batch and skips the crops already trained on, so
    a resumed run draws exactly the crops the uninterrupted one would have. Under DDP rank r of
    w takes every w-th key from r on (n // w each, so all ranks step together); the sampler
    shards itself because Lightning's distributed wrapper would hide ``set_epoch`` and repeat
    epoch 0's crops.
    """

    def __init__(self, length: int, fixed: bool, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside a world of {world_size}")
        self.length, self.fixed, self.epoch = length, fixed, 0
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        start = (0 if self.fixed else self.epoch * self.length) + self.rank
        return iter(range(start, start + len(self) * self.world_size, self.world_size))

    def __len__(self) -> int:
        return max(self.length // self.world_size, 1)


class DimeDataModule(L.LightningDataModule):
    """Train and validation patches from packed datasets (one or more packs each)."""

    def __init__(
        self,
        train_paths: Sequence[str | Path],
        val_paths: Sequence[str | Path],
        patch_size: int,
        config: DataConfig | None = None,
        seed: int = 0,
        components: int = 1,
    ) -> None:
        super().__init__()
        self.train_paths, self.val_paths = list(train_paths), list(val_paths)
        self.patch_size, self.config, self.seed = patch_size, config or DataConfig(), seed
        self.components = components  # the network's component slots (UNetConfig.components)
        self.train_set: PatchDataset | None = None
        self.val_set: PatchDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        cfg = self.config
        if self.train_set is None and stage in (None, "fit"):
            self.train_set = PatchDataset(
                self.train_paths,
                self.patch_size,
                cfg.crops_per_epoch,
                self.seed,
                TRAIN_STREAM,
                cfg,
                augment=cfg.augment,
                components=self.components,
            )
            log.info("training rows: %s", _describe(self.train_set))
        if self.val_set is None and stage in (None, "fit", "validate"):
            self.val_set = PatchDataset(
                self.val_paths,
                self.patch_size,
                cfg.val_crops,
                self.seed,
                VAL_STREAM,
                cfg,
                augment=False,
                components=self.components,
            )

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None
        return self._loader(self.train_set, self._keys(len(self.train_set), fixed=False))

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None
        return self._loader(self.val_set, self._keys(len(self.val_set), fixed=True))

    def _keys(self, length: int, fixed: bool) -> CropKeys:
        trainer = self.trainer  # None outside a Trainer (tests, notebooks)
        if trainer is None:
            return CropKeys(length, fixed)
        return CropKeys(length, fixed, trainer.global_rank, trainer.world_size)

    def _loader(self, dataset: PatchDataset, sampler: CropKeys) -> DataLoader:
        workers = self.config.num_workers
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )


def _describe(dataset: PatchDataset) -> str:
    rows = dataset.rows
    names, counts = np.unique(rows.family, return_counts=True)
    levels = len(np.unique(noise_levels(rows.snr, dataset.config.snr_bins)))
    families = ", ".join(f"{n} × {c}" for n, c in zip(names, counts, strict=True))
    return f"{len(rows)} ({families}; {levels} noise level(s))"
