"""Packed datasets from acquired stores: round trip, split by sample, stratification, errors."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dime_pipeline.acquisition import AcquisitionParams, acquire
from dime_pipeline.cli import main
from dime_pipeline.datasets import IMAGE_ARRAYS, PACK_ARRAYS, Pack, write_pack, write_pack_rows
from dime_pipeline.errors import UserError
from dime_pipeline.packing import SPLITS, assign_splits, pack_stores, split_counts
from dime_pipeline.store import Sample, read_sample, wave_pattern_of, write_sample

H = 1.5e-3
SHAPE = (12, 12)


def simulated(
    family: str,
    seed: int,
    shape=SHAPE,
    config_hash: str = "beef",
    wave_pattern: str | None = None,
) -> Sample:
    """A tiny sample store's content; ``wave_pattern`` None: a store written before wave
    patterns (no such attribute)."""
    rng = np.random.default_rng(seed)
    y, x = np.indices(shape)
    mask = (x - shape[1] / 2 + 0.5) ** 2 + (y - shape[0] / 2 + 0.5) ** 2 < (0.45 * shape[0]) ** 2
    field = 1e-5 * np.exp(-1j * rng.uniform(0.2, 0.6) * (x + 0.5 * y))
    return Sample(
        displacement=np.stack([field, 0.5 * field, 2j * field]),
        modulus=np.where(mask, 2000 + 400j + 100 * seed, 0),
        mask=mask,
        labels=mask.astype(np.int16),
        attrs={
            "family": family,
            "seed": seed,
            "frequency_hz": 50.0 + seed,
            "voxel_size_m": [H, H],
            "density_kg_m3": 1000.0,
            "config_hash": config_hash,
            "components": ["x", "y", "z"],
            "solver": {"dofs": {}, "ranks": 1, "seconds": {}, "versions": {}},
            **({} if wave_pattern is None else {"wave_pattern": wave_pattern}),
        },
    )


def acquired_store(directory: Path, family: str, seed: int, snr: float | None, **kwargs) -> Path:
    path = directory / f"{family}-{seed}-{snr}.zarr"
    write_sample(path, acquire(simulated(family, seed, **kwargs), AcquisitionParams(snr=snr), seed))
    return path


PACK_OPTIONS = ["--seed", "3", "--fractions", "0.5", "0.25", "0.25", "--config-hash", "f00d"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> list[Path]:
    """Two families × 6 samples × 2 noise levels (noise-free and SNR 10)."""
    directory = tmp_path_factory.mktemp("acquired")
    return [
        acquired_store(directory, family, seed, snr)
        for family in ("homogeneous", "heterogeneous")
        for seed in range(100, 106)
        for snr in (None, 10.0)
    ]


@pytest.fixture(scope="module")
def packed(stores, tmp_path_factory) -> dict[str, Pack]:
    out = tmp_path_factory.mktemp("packs")
    assert main(["pack", *map(str, stores), "--out-dir", str(out), *PACK_OPTIONS]) == 0
    return {split: Pack(out / f"{split}.zarr") for split in SPLITS}


def test_round_trip_values_dtypes_and_attrs(packed, stores):
    for split, pack in packed.items():
        assert pack.attrs["split"] == split
        assert pack.attrs["families"] == ["heterogeneous", "homogeneous"]
        assert pack.attrs["patterns"] == ["absorbing"]  # stores without wave_pattern: fallback
        assert pack.attrs["config_hash"] == "f00d"
        assert pack.attrs["split_seed"] == 3
        assert {"numpy", "zarr", "dime_pipeline"} <= set(pack.attrs["versions"])
        for name, dtype in PACK_ARRAYS.items():
            assert pack.arrays[name].dtype == np.dtype(dtype), name
        assert pack.arrays["measured"].chunks == (1, 3, *SHAPE)
        for row, source in enumerate(pack.attrs["sources"]):
            sample, stored = pack.sample(row), read_sample(source)
            for name in ("measured", "displacement", "modulus"):
                np.testing.assert_array_equal(
                    sample[name], getattr(stored, name).astype(np.complex64)
                )
            np.testing.assert_array_equal(sample["mask"], stored.mask)
            np.testing.assert_array_equal(sample["labels"], stored.labels)
            assert pack.families[sample["family"]] == stored.attrs["family"]
            assert pack.patterns[sample["pattern"]] == "absorbing"
            assert sample["seed"] == stored.attrs["seed"]
            assert sample["frequency_hz"] == stored.attrs["frequency_hz"]
            np.testing.assert_array_equal(sample["voxel_size_m"], [H, H])
            snr = stored.attrs["acquisition"]["snr"]
            assert sample["snr"] == (np.inf if snr is None else snr)
            assert pack.attrs["acquisition_seeds"][row] == stored.attrs["acquisition"]["seed"]


def test_splits_are_disjoint_complete_by_sample_and_stratified(packed, stores):
    sources = {split: pack.attrs["sources"] for split, pack in packed.items()}
    every = [source for rows in sources.values() for source in rows]
    assert sorted(every) == sorted(map(str, stores))  # each store exactly once
    home = {}
    for split, pack in packed.items():
        for family, seed in zip(pack.column("family"), pack.column("seed"), strict=True):
            assert home.setdefault((family, seed), split) == split  # all noise levels together
        assert set(pack.column("family")) == {0, 1}  # every split has every family
    # 6 samples per family at 0.5 / 0.25 / 0.25: 3 / 1.5 / 1.5, the tie going to the earlier split
    for family in (0, 1):
        counts = Counter(split for (f, _), split in home.items() if f == family)
        assert counts == {"train": 3, "val": 2, "test": 1}


def test_assignment_is_deterministic_and_order_free():
    keys = [(family, seed) for family in ("a", "b") for seed in range(20)]
    first = assign_splits(keys, (0.7, 0.15, 0.15), seed=1)
    assert assign_splits(list(reversed(keys)), (0.7, 0.15, 0.15), seed=1) == first
    others = [assign_splits(keys, (0.7, 0.15, 0.15), seed=s) for s in (2, 3, 4)]
    assert any(other != first for other in others)
    for family in ("a", "b"):
        counts = Counter(split for (f, _), split in first.items() if f == family)
        assert counts == {"train": 14, "val": 3, "test": 3}


@pytest.mark.parametrize(
    ("n", "fractions", "expected"),
    [
        (4, (0.7, 0.15, 0.15), [2, 1, 1]),
        (10, (0.7, 0.15, 0.15), [7, 2, 1]),
        (2, (0.7, 0.15, 0.15), [2, 0, 0]),
        (3, (1 / 3, 1 / 3, 1 / 3), [1, 1, 1]),
        (5, (0.8, 0.2, 0.0), [4, 1, 0]),
        (1, (0.0, 0.0, 1.0), [0, 0, 1]),
    ],
)
def test_split_counts(n, fractions, expected):
    assert split_counts(n, fractions) == expected


def test_pack_is_deterministic(stores, tmp_path):
    first = pack_stores(stores, tmp_path / "a", seed=9)
    again = pack_stores(list(reversed(stores)), tmp_path / "b", seed=9)
    assert {k: sorted(v) for k, v in first.items()} == {k: sorted(v) for k, v in again.items()}
    for split in SPLITS:
        a, b = Pack(tmp_path / "a" / f"{split}.zarr"), Pack(tmp_path / "b" / f"{split}.zarr")
        np.testing.assert_array_equal(a.column("measured"), b.column("measured"))


def test_stores_from_an_argument_file_pack_the_same(stores, packed, tmp_path):
    """The workflow passes its 10⁴ store paths as @FILE (one per line): more paths than one
    command line may hold."""
    listing = tmp_path / "stores.txt"
    listing.write_text("".join(f"{store}\n" for store in stores))
    out = tmp_path / "from-file"
    assert main(["pack", f"@{listing}", "--out-dir", str(out), *PACK_OPTIONS]) == 0
    for split in SPLITS:
        np.testing.assert_array_equal(
            packed[split].column("measured"), Pack(out / f"{split}.zarr").column("measured")
        )


def test_empty_split_is_written(stores, tmp_path):
    pack_stores(stores[:4], tmp_path, fractions=(1.0, 0.0, 0.0), seed=0)
    assert len(Pack(tmp_path / "train.zarr")) == 4
    empty = Pack(tmp_path / "test.zarr")
    assert len(empty) == 0 and empty.column("measured").shape == (0, 3, *SHAPE)


def test_pack_holds_one_sample_not_a_split(tmp_path):
    """Paper-scale splits are tens of GB: rows are copied one store at a time. 40 stores of 64²
    in one split: Python's peak allocation while packing stays below 10 samples' worth (the
    whole-split writer peaked at 11.4 MB, 47 samples' worth)."""
    stores = [
        acquired_store(tmp_path, "homogeneous", seed, None, shape=(64, 64)) for seed in range(40)
    ]
    one_sample = sum(
        getattr(read_sample(stores[0]), name).astype(dtype).nbytes
        for name, dtype in PACK_ARRAYS.items()
        if name in IMAGE_ARRAYS
    )
    tracemalloc.start()
    try:
        pack_stores(stores, tmp_path / "packs", fractions=(1.0, 0.0, 0.0), seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(Pack(tmp_path / "packs" / "train.zarr")) == 40
    assert peak < 10 * one_sample


def test_writer_refuses_rows_that_do_not_match_and_writes_nothing(packed, tmp_path):
    rows = [packed["train"].sample(i) for i in range(len(packed["train"]))]
    attrs = packed["train"].attrs
    shape = rows[0]["measured"].shape
    target = tmp_path / "pack.zarr"
    with pytest.raises(ValueError, match="rows written"):
        write_pack_rows(target, len(rows) + 1, shape, iter(rows), attrs)
    with pytest.raises(ValueError, match="more than"):
        write_pack_rows(target, len(rows) - 1, shape, iter(rows), attrs)
    wrong = [{**rows[0], "mask": rows[0]["mask"][:-1]}]
    with pytest.raises(ValueError, match="mask of a row has shape"):
        write_pack_rows(target, 1, shape, iter(wrong), attrs)
    assert not target.exists() and not list(tmp_path.iterdir())  # no half-written pack


def test_wave_pattern_of_stores_and_its_fallback():
    assert wave_pattern_of({"family": "liver", "wave_pattern": "converging"}) == "converging"
    # Stores from before wave patterns: one driver, absorbing rest; the liver's skin was free.
    assert wave_pattern_of({"family": "homogeneous"}) == "absorbing"
    assert wave_pattern_of({"family": "heterogeneous"}) == "absorbing"
    assert wave_pattern_of({"family": "liver"}) == "reflecting"
    with pytest.raises(ValueError, match="swirling"):
        wave_pattern_of({"family": "liver", "wave_pattern": "swirling"})


def test_rows_keep_their_wave_pattern_and_old_stores_get_the_fallback(tmp_path):
    expected = {
        acquired_store(tmp_path, "homogeneous", 1, None, wave_pattern="converging"): "converging",
        acquired_store(tmp_path, "homogeneous", 2, 10.0, wave_pattern="multi_driver"): (
            "multi_driver"
        ),
        acquired_store(tmp_path, "heterogeneous", 3, None, wave_pattern="reflecting"): (
            "reflecting"
        ),
        acquired_store(tmp_path, "heterogeneous", 4, None): "absorbing",  # no wave_pattern
        acquired_store(tmp_path, "liver", 5, None): "reflecting",  # old liver: free skin
        acquired_store(tmp_path, "liver", 6, None, wave_pattern="absorbing"): "absorbing",
    }
    assert read_sample(next(iter(expected))).attrs["wave_pattern"] == "converging"  # acquired
    pack_stores(list(expected), tmp_path / "packs", fractions=(1.0, 0.0, 0.0), seed=0)
    pack = Pack(tmp_path / "packs" / "train.zarr")
    patterns = ["absorbing", "converging", "multi_driver", "reflecting"]
    assert pack.attrs["patterns"] == pack.patterns == patterns
    assert pack.arrays["pattern"].dtype == np.int16
    # Rows by (family, seed): heterogeneous 3, 4; homogeneous 1, 2; liver 5, 6.
    assert [read_sample(s).attrs["seed"] for s in pack.attrs["sources"]] == [3, 4, 1, 2, 5, 6]
    assert pack.column("pattern").tolist() == [3, 0, 1, 2, 3, 0]
    assert pack.wave_patterns() == [expected[Path(s)] for s in pack.attrs["sources"]]
    assert [int(pack.row("pattern", i)) for i in range(len(pack))] == [3, 0, 1, 2, 3, 0]
    empty = Pack(tmp_path / "packs" / "test.zarr")  # every split names the same patterns
    assert empty.patterns == patterns and empty.column("pattern").shape == (0,)


def test_packs_without_patterns_read_with_the_fallback(packed, tmp_path):
    """A pack written before wave patterns has neither the ``pattern`` array nor the
    ``patterns`` attribute: its rows get their family's old pattern (liver: reflecting)."""
    train = packed["train"]
    rows = [{k: v for k, v in train.sample(i).items() if k != "pattern"} for i in range(len(train))]
    attrs = {k: v for k, v in train.attrs.items() if k != "patterns"}
    attrs["families"] = ["homogeneous", "liver"]  # code 0 and code 1 of the rows
    old = tmp_path / "old.zarr"
    write_pack_rows(old, len(rows), rows[0]["measured"].shape, iter(rows), attrs)
    assert not (old / "pattern").exists()
    pack = Pack(old)
    assert "pattern" not in pack.arrays and "pattern" not in pack.sample(0)
    assert pack.patterns == ["absorbing", "reflecting"]
    codes = train.column("family")
    assert set(codes.tolist()) == {0, 1}
    np.testing.assert_array_equal(pack.column("pattern"), codes)  # homogeneous 0, liver 1
    assert pack.wave_patterns() == [["absorbing", "reflecting"][c] for c in codes]
    assert int(pack.row("pattern", 1)) == codes[1]


def test_pattern_array_and_names_are_checked(packed, tmp_path):
    train = packed["train"]
    rows = [train.sample(i) for i in range(len(train))]
    shape = rows[0]["measured"].shape
    cases = [
        ({"patterns": ["absorbing"]}, {"pattern": 3}, "column 'pattern' must be an index into"),
        ({"patterns": ["swirling"]}, {}, "attribute 'patterns' must be a list of"),
    ]
    for k, (attrs, row, message) in enumerate(cases):
        path = tmp_path / f"bad{k}.zarr"
        bad = [{**r, **row} for r in rows]
        write_pack_rows(path, len(rows), shape, iter(bad), {**train.attrs, **attrs})
        with pytest.raises(UserError, match=message):
            Pack(path)
    # The names without the array, or the array without its names: not a valid pack.
    lost = tmp_path / "lost.zarr"
    shutil.copytree(train.path, lost)
    shutil.rmtree(lost / "pattern")
    with pytest.raises(UserError, match="'pattern' is missing"):
        Pack(lost)
    unnamed = tmp_path / "unnamed.zarr"
    shutil.copytree(train.path, unnamed)
    metadata = json.loads((unnamed / "zarr.json").read_text())
    del metadata["attributes"]["patterns"]
    (unnamed / "zarr.json").write_text(json.dumps(metadata))
    with pytest.raises(UserError, match="array 'pattern' without the attribute 'patterns'"):
        Pack(unnamed)
    arrays = {name: train.column(name) for name in PACK_ARRAYS}
    attrs = {k: v for k, v in train.attrs.items() if k != "patterns"}
    with pytest.raises(ValueError, match="need the attributes"):
        write_pack(tmp_path / "written.zarr", arrays, attrs)
    assert not (tmp_path / "written.zarr").exists()


def _bad_pack(tmp_path: Path, capsys, args: list[str]) -> str:
    out = tmp_path / "packs"
    status = main(["pack", *args, "--out-dir", str(out), "--seed", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("dime-pipeline pack: error: ")
    assert not out.exists()
    return err[0]


def test_bad_inputs_are_one_line_and_write_nothing(stores, tmp_path, capsys):
    odd = tmp_path / "odd.zarr"
    write_sample(odd, acquire(simulated("homogeneous", 1, shape=(10, 12)), AcquisitionParams(), 1))
    message = _bad_pack(tmp_path, capsys, [str(stores[0]), str(odd)])
    assert "odd.zarr" in message and "share a shape" in message
    assert "no sample store" in _bad_pack(tmp_path, capsys, [str(stores[0]), str(tmp_path / "x")])
    raw = tmp_path / "raw.zarr"
    write_sample(raw, simulated("homogeneous", 2))
    assert "not an acquired store" in _bad_pack(tmp_path, capsys, [str(raw)])
    fractions = [str(stores[0]), "--fractions", "0.5", "0.5", "0.5"]
    assert "sum to 1" in _bad_pack(tmp_path, capsys, fractions)
    assert "given twice" in _bad_pack(tmp_path, capsys, [str(stores[0]), str(stores[0])])
    other = acquired_store(tmp_path, "homogeneous", 3, None, config_hash="0ther")
    assert "different configs" in _bad_pack(tmp_path, capsys, [str(stores[0]), str(other)])
    swirling = acquired_store(tmp_path, "homogeneous", 4, None, wave_pattern="swirling")
    message = _bad_pack(tmp_path, capsys, [str(stores[0]), str(swirling)])
    assert "attribute 'wave_pattern' must be one of converging, multi_driver" in message
