"""``evaluate`` + ``report`` end to end on a tiny test pack and three tiny estimates stores: the
metrics JSON layout, every report section, every figure embedded and not blank, no external
links, and one-line errors."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread
from scipy import ndimage

from dime_pipeline.cli import main
from dime_pipeline.datasets import write_pack
from dime_pipeline.estimates import Estimates, write_estimates

SHAPE = (32, 32)
FAMILIES = ["homogeneous", "inclusion"]
SNRS = [np.inf, 10.0]
FREQUENCIES = [50.0, 60.0]  # one per seed: a frequency sweep with two levels
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _phantom(family: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(G* in Pa, mask, labels): a disc, with a stiff inner disc for the inclusion family."""
    y, x = np.indices(SHAPE)
    radius2 = (y - 16) ** 2 + (x - 16) ** 2
    mask = radius2 < 14**2
    labels = mask.astype(np.int16)
    if family == 1:
        labels[radius2 < 6**2] = 2
    storage = np.where(labels == 2, 7000.0, 2500.0 + 800.0 * seed)
    return (storage + 0.2j * storage) * mask, mask, labels


def _pack(path: Path) -> list[tuple[int, int, float]]:
    rows = [(f, s, snr) for f in range(2) for s in range(2) for snr in SNRS]
    phantoms = [_phantom(f, s) for f, s, _ in rows]
    n = len(rows)
    arrays = {
        "measured": np.zeros((n, 3, *SHAPE), np.complex64),
        "displacement": np.zeros((n, 3, *SHAPE), np.complex64),
        "modulus": np.stack([p[0] for p in phantoms]),
        "mask": np.stack([p[1] for p in phantoms]),
        "labels": np.stack([p[2] for p in phantoms]),
        "frequency_hz": np.array([FREQUENCIES[s] for _, s, _ in rows]),
        "voxel_size_m": np.full((n, 2), 1.5e-3),
        "density_kg_m3": np.full(n, 1000.0),
        "snr": np.array([snr for _, _, snr in rows]),
        "family": np.array([f for f, _, _ in rows]),
        "seed": np.array([100 + 10 * f + s for f, s, _ in rows]),
    }
    attrs = {
        "split": "test",
        "families": FAMILIES,
        "config_hash": "0123456789abcdef",
        "versions": {"dime_pipeline": "test"},
        "sources": [f"nowhere/{i}.zarr" for i in range(n)],
    }
    write_pack(path, arrays, attrs)
    return rows


def _estimates(path: Path, pack: Path, method: str, rows: list, quality: float) -> None:
    """Truth blurred, scaled and noisy; worse with smaller ``quality`` and at SNR 10."""
    rng = np.random.default_rng(len(method))
    maps, masks = [], []
    for (family, seed, snr), _ in zip(rows, range(len(rows)), strict=True):
        modulus, mask, _ = _phantom(family, seed)
        noise = 0.02 if np.isinf(snr) else 0.1
        estimate = ndimage.gaussian_filter(np.abs(modulus), 2.0 - quality) * (0.8 + 0.2 * quality)
        estimate *= 1 + noise / quality * rng.standard_normal(SHAPE)
        if method == "di":
            estimate[mask & (rng.random(SHAPE) < 0.05)] = np.nan  # a few failed pixels
        maps.append(estimate.astype(np.complex64))
        masks.append(mask)
    write_estimates(
        path,
        Estimates(
            modulus=np.stack(maps),
            confidence=np.ones((len(rows), *SHAPE), np.float32),
            mask=np.stack(masks),
            seed=np.array([100 + 10 * f + s for f, s, _ in rows]),
            attrs={
                "method": method,
                "parameters": {"quality": quality},
                "source": str(pack),
                "split": "test",
                "config_hash": "0123456789abcdef",
                "seconds": [0.01] * len(rows),
            },
        ),
    )


def _training_log(path: Path) -> Path:
    """A Lightning CSVLogger file: step rows with train/loss, epoch rows with val/* metrics."""
    lines = ["epoch,step,train/loss,train/mse,val/loss,val/mse,val/r,val/mape"]
    for epoch in range(4):
        loss = 1.0 / (epoch + 1)
        lines += [f"{epoch},{epoch * 10 + k},{loss * (1.1 - 0.05 * k)},,,,," for k in range(3)]
        lines.append(
            f"{epoch},{epoch * 10 + 9},,{loss},{1.2 * loss},{1.2 * loss},"
            f"{0.8 + 0.05 * epoch},{30 - 5 * epoch}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def _preview(path: Path) -> Path:
    figure = Figure(figsize=(2, 2))
    figure.add_subplot().imshow(np.indices((16, 16)).sum(axis=0))
    figure.savefig(path, format="png")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    pack = root / "datasets" / "test.zarr"
    rows = _pack(pack)
    stores = []
    for method, quality in (("di", 0.5), ("dime", 1.5), ("mmdi", 1.0)):  # any order given
        store = root / "inversions" / method / "test.zarr"
        _estimates(store, pack, method, rows, quality)
        stores.append(store)
    paths = {
        "pack": pack,
        "metrics": root / "metrics",
        "figures": root / "figures",
        "html": root / "report" / "index.html",
        "config": root / "config.yaml",
        "log": _training_log(root / "metrics.csv"),
        "training_png": root / "figures" / "training" / "curves.png",
        "previews": [_preview(root / "p0.png"), _preview(root / "p1.png")],
    }
    paths["config"].write_text("seed: 2025\nsamples:\n  homogeneous: 2\n")
    assert (
        main(
            [
                "--quiet",
                "evaluate",
                "--truth",
                str(pack),
                "--estimates",
                *map(str, stores),
                "--out-dir",
                str(paths["metrics"]),
                "--figures-dir",
                str(paths["figures"]),
                "--max-map-rows",
                "2",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "--quiet",
                "report",
                "--metrics-dir",
                str(paths["metrics"]),
                "--figures-dir",
                str(paths["figures"]),
                "--config",
                str(paths["config"]),
                "--training-log",
                str(paths["log"]),
                "--training-figure",
                str(paths["training_png"]),
                "--previews",
                *map(str, paths["previews"]),
                "--out",
                str(paths["html"]),
            ]
        )
        == 0
    )
    return paths


def _strict_json(path: Path) -> dict:
    def reject(constant: str) -> None:
        raise AssertionError(f"{path.name}: non-JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=reject)


def test_metrics_json_layout(run: dict[str, Path]) -> None:
    names = sorted(p.name for p in run["metrics"].glob("*.json"))
    assert names == [
        "groups.json",
        "provenance.json",
        "samples.json",
        "summary.json",
        "sweeps.json",
    ]
    summary = _strict_json(run["metrics"] / "summary.json")
    assert summary["methods"] == ["dime", "mmdi", "di"]  # pipeline order, whatever was given
    assert summary["families"] == FAMILIES
    group = summary["table"]["inclusion"]["dime"]
    assert set(group) == {
        "n_samples",
        "pixel",
        "roi",
        "cv_pct",
        "edge_width_mm",
        "staging",
        "headline",
    }
    assert group["n_samples"] == 4
    assert group["edge_width_mm"]["n_edges"] == 4 and group["edge_width_mm"]["mean"] > 0
    assert len(group["staging"]["matrix"]) == 5
    assert summary["table"]["homogeneous"]["dime"]["edge_width_mm"]["n_edges"] == 0
    # The better synthetic method is better on the headline numbers.
    headline = {m: summary["table"]["inclusion"][m]["headline"] for m in summary["methods"]}
    assert headline["dime"]["mape_pct"] < headline["mmdi"]["mape_pct"] < headline["di"]["mape_pct"]
    assert headline["di"]["coverage_pct"] < 100 == headline["dime"]["coverage_pct"]
    groups = _strict_json(run["metrics"] / "groups.json")
    assert list(groups["table"]["homogeneous"]) == ["10", "inf"]
    samples = _strict_json(run["metrics"] / "samples.json")["samples"]
    assert len(samples) == 8 and samples[0]["methods"]["di"]["liver_roi"]["name"] == "region 1"
    sweeps = _strict_json(run["metrics"] / "sweeps.json")["sweeps"]
    assert [level["label"] for level in sweeps["snr"]["inclusion"]["levels"]] == ["10", "inf"]
    assert [level["value"] for level in sweeps["frequency_hz"]["inclusion"]["levels"]] == [50, 60]
    assert len(sweeps["voxel_size_mm"]["inclusion"]["levels"]) == 1
    provenance = _strict_json(run["metrics"] / "provenance.json")
    assert provenance["config_hash"] == "0123456789abcdef" and provenance["config_hash_consistent"]


def test_report_has_every_section_and_figure(run: dict[str, Path]) -> None:
    text = run["html"].read_text()
    for section in (
        "summary",
        "family-homogeneous",
        "family-inclusion",
        "noise",
        "sweeps",
        "training",
        "phantoms",
        "definitions",
        "config",
        "provenance",
    ):
        assert f'<section id="{section}">' in text, section
    assert text.index('id="summary"') < text.index('id="family-') < text.index('id="provenance"')
    manifest = json.loads((run["figures"] / "manifest.json").read_text())["figures"]
    kinds = {(e["kind"], e["family"]) for e in manifest}
    for family in FAMILIES:
        for kind in ("maps", "scatter", "bland_altman", "noise", "sweeps"):
            assert (kind, family) in kinds
    images = IMG.findall(text)
    assert len(images) == len(manifest) + 1 + 2  # + training curves + two previews
    for entry in manifest:
        data = (run["figures"] / entry["path"]).read_bytes()
        assert base64.b64encode(data).decode() in images, entry["path"]
    assert run["training_png"].stat().st_size > 0
    assert "seed: 2025" in text and "0123456789abcdef" in text


def test_report_is_self_contained(run: dict[str, Path]) -> None:
    text = run["html"].read_text()
    links = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', text)
    assert links
    external = [link for link in links if not link.startswith(("data:image/png;base64,", "#"))]
    assert external == []
    assert "<link" not in text and "<script" not in text and "url(" not in text


def test_no_figure_is_blank(run: dict[str, Path]) -> None:
    for encoded in IMG.findall(run["html"].read_text()):
        data = base64.b64decode(encoded)
        assert len(data) > 1000
        pixels = imread(io.BytesIO(data), format="png")
        assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels[..., :3].std() > 0.01


def test_report_without_training_log(run: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "index.html"
    code = main(
        [
            "--quiet",
            "report",
            "--metrics-dir",
            str(run["metrics"]),
            "--figures-dir",
            str(run["figures"]),
            "--training-log",
            str(tmp_path / "missing.csv"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = out.read_text()
    assert 'id="training"' not in text and 'id="phantoms"' not in text
    assert 'id="config"' in text and "No configuration file" in text


def test_errors_are_one_line(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mismatched = tmp_path / "other.zarr"
    rows = _pack(tmp_path / "other_pack.zarr")
    _estimates(mismatched, tmp_path / "other_pack.zarr", "dime", rows[:4], 1.0)
    cases = [
        [
            "evaluate",
            "--truth",
            str(run["pack"]),
            "--estimates",
            str(mismatched),
            "--out-dir",
            str(tmp_path / "m"),
        ],
        [
            "evaluate",
            "--truth",
            str(tmp_path / "nope.zarr"),
            "--estimates",
            str(mismatched),
            "--out-dir",
            str(tmp_path / "m"),
        ],
        [
            "report",
            "--metrics-dir",
            str(tmp_path / "none"),
            "--figures-dir",
            str(run["figures"]),
            "--out",
            str(tmp_path / "r.html"),
        ],
        [
            "report",
            "--metrics-dir",
            str(run["metrics"]),
            "--figures-dir",
            str(run["figures"]),
            "--previews",
            str(run["config"]),
            "--out",
            str(tmp_path / "r.html"),
        ],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(["--quiet", *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"dime-pipeline {argv[0]}: error:") and "\n" not in err, err
    assert not (tmp_path / "m").exists() and not (tmp_path / "r.html").exists()
