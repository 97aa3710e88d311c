"""``evaluate`` + ``report`` end to end on a tiny test pack and three tiny estimates stores: the
metrics JSON layout, every report section, every figure embedded and not blank, no external
links, and one-line errors."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser
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
# The wave pattern of each (family, seed): converging across both families, the others in one.
PATTERNS = {
    (0, 0): "absorbing",
    (0, 1): "converging",
    (1, 0): "converging",
    (1, 1): "multi_driver",
}
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


def _pack(
    path: Path, families: list[str] = FAMILIES, patterns: bool = True
) -> list[tuple[int, int, float]]:
    """The test pack: rows (family code, seed, SNR); ``patterns`` False: a pack written before
    wave patterns (no ``pattern`` array, no ``patterns`` attribute)."""
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
        "families": families,
        "config_hash": "0123456789abcdef",
        "versions": {"dime_pipeline": "test"},
        "sources": [f"nowhere/{i}.zarr" for i in range(n)],
    }
    if patterns:
        names = sorted(set(PATTERNS.values()))
        attrs["patterns"] = names
        arrays["pattern"] = np.array([names.index(PATTERNS[f, s]) for f, s, _ in rows])
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
    assert provenance["truth"]["patterns"] == ["absorbing", "converging", "multi_driver"]


def _pixels(samples: list[dict], method: str, pattern: str, snr: str | None = None) -> int:
    """Evaluated pixels of ``method`` in the samples of ``pattern`` (at noise level ``snr``)."""
    return sum(
        s["methods"][method]["pixel"]["n"]
        for s in samples
        if s["wave_pattern"] == pattern and snr in (None, s["snr_label"])
    )


def test_metrics_by_wave_pattern(run: dict[str, Path]) -> None:
    """Beside the family and family × SNR groups: wave pattern, and wave pattern × SNR, per
    method, every family pooled (converging holds a homogeneous and an inclusion phantom)."""
    summary = _strict_json(run["metrics"] / "summary.json")
    groups = _strict_json(run["metrics"] / "groups.json")
    samples = _strict_json(run["metrics"] / "samples.json")["samples"]
    order = ["converging", "multi_driver", "absorbing"]  # config.WAVE_PATTERNS order
    assert summary["patterns"] == groups["patterns"] == order
    assert list(summary["by_pattern"]) == list(groups["by_pattern"]) == order
    assert list(summary["table"]) == FAMILIES  # the family groups are untouched
    for sample in samples:  # seed = 100 + 10 × family code + seed index
        family = FAMILIES.index(sample["family"])
        assert sample["wave_pattern"] == PATTERNS[family, sample["seed"] - 100 - 10 * family]
    counts = {"converging": 4, "multi_driver": 2, "absorbing": 2}
    edges = {"converging": 2, "multi_driver": 2, "absorbing": 0}  # the inclusion's edge per row
    for pattern in order:
        assert list(summary["by_pattern"][pattern]) == summary["methods"]
        assert list(groups["by_pattern"][pattern]) == ["10", "inf"]
        for method in summary["methods"]:
            pooled = summary["by_pattern"][pattern][method]
            assert set(pooled) == set(summary["table"]["inclusion"][method])  # same metrics
            assert pooled["n_samples"] == pooled["headline"]["n_samples"] == counts[pattern]
            assert pooled["pixel"]["n"] == _pixels(samples, method, pattern)
            assert pooled["edge_width_mm"]["n_edges"] == edges[pattern]
            for label, level in groups["by_pattern"][pattern].items():
                assert level[method]["n_samples"] == counts[pattern] // 2
                assert level[method]["pixel"]["n"] == _pixels(samples, method, pattern, label)
    # multi-driver: the second inclusion phantom alone.
    alone = [s for s in samples if s["wave_pattern"] == "multi_driver"]
    assert {(s["family"], s["seed"]) for s in alone} == {("inclusion", 111)}
    dime = summary["by_pattern"]["converging"]["dime"]["headline"]
    assert dime["mape_pct"] < summary["by_pattern"]["converging"]["di"]["headline"]["mape_pct"]


def test_packs_without_wave_patterns_evaluate_with_the_fallback(tmp_path: Path) -> None:
    """A test pack written before wave patterns: its rows count as what their family was then
    (liver: reflecting, its skin traction-free; any other family: absorbing)."""
    from dime_pipeline.datasets import Pack
    from dime_pipeline.evaluation.evaluate import evaluate

    pack = tmp_path / "old.zarr"
    rows = _pack(pack, families=["homogeneous", "liver"], patterns=False)
    assert not (pack / "pattern").exists() and "patterns" not in Pack(pack).attrs
    store = tmp_path / "dime.zarr"
    _estimates(store, pack, "dime", rows, 1.0)
    documents = evaluate(pack, [store]).documents
    summary, groups = documents["summary.json"], documents["groups.json"]
    assert summary["patterns"] == ["reflecting", "absorbing"]
    assert summary["by_pattern"]["reflecting"]["dime"]["n_samples"] == 4
    assert summary["by_pattern"]["absorbing"]["dime"]["n_samples"] == 4
    assert groups["by_pattern"]["reflecting"]["inf"]["dime"]["n_samples"] == 2
    for sample in documents["samples.json"]["samples"]:
        assert (
            sample["wave_pattern"]
            == {"liver": "reflecting", "homogeneous": "absorbing"}[sample["family"]]
        )
    liver = summary["table"]["liver"]["dime"]
    assert summary["by_pattern"]["reflecting"]["dime"]["pixel"] == liver["pixel"]


def test_report_has_every_section_and_figure(run: dict[str, Path]) -> None:
    text = run["html"].read_text()
    for section in (
        "summary",
        "family-homogeneous",
        "family-inclusion",
        "patterns",
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
    assert (
        text.index('id="family-inclusion"') < text.index('id="patterns"') < text.index('id="noise"')
    )
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


# --- a report that tells the truth ------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def _section(text: str, sid: str) -> str:
    match = re.search(rf'<section id="{re.escape(sid)}">(.*?)</section>', text, re.DOTALL)
    assert match, sid
    return match.group(1)


def _build(run: dict[str, Path], out: Path, metrics: Path | None = None, **kwargs) -> str:
    from dime_pipeline.evaluation.report import build_report

    build_report(metrics or run["metrics"], kwargs.pop("figures", run["figures"]), out, **kwargs)
    return out.read_text()


def _inputs(run: dict[str, Path]):
    from dime_pipeline.evaluation.figure_set import read_manifest
    from dime_pipeline.evaluation.report import ReportInputs, load_metrics

    return ReportInputs(
        metrics=load_metrics(run["metrics"]),
        figures=read_manifest(run["figures"]),
        figures_dir=run["figures"],
    )


def test_staging_only_for_the_liver_family(run: dict[str, Path], tmp_path: Path) -> None:
    text = run["html"].read_text()
    assert "Fibrosis staging" not in text and "stage agreement %" not in text
    assert "Fibrosis classes" not in text and 'class="confusion"' not in text
    # The same study with its inclusion family called liver: staging there, and only there.
    metrics, figures_dir = tmp_path / "metrics", tmp_path / "figures"
    shutil.copytree(run["figures"], figures_dir)
    metrics.mkdir()
    for path in run["metrics"].glob("*.json"):
        (metrics / path.name).write_text(path.read_text().replace('"inclusion"', '"liver"'))
    manifest = figures_dir / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"inclusion"', '"liver"'))
    text = _build(run, tmp_path / "index.html", metrics, figures=figures_dir)
    liver, homogeneous = _section(text, "family-liver"), _section(text, "family-homogeneous")
    assert "Fibrosis staging" in liver and liver.count('class="confusion"') == 3
    assert "Fibrosis staging" not in homogeneous and "stage agreement %" not in homogeneous
    assert "stage agreement %" in liver and "Fibrosis classes (liver family)" in text
    summary = _section(text, "summary")
    assert summary.count("stage agreement %") == 1  # the liver table's column only
    assert summary.index("<h3>liver</h3>") < summary.index("stage agreement %")


def test_banner_when_the_test_split_is_small(run: dict[str, Path]) -> None:
    from dime_pipeline.evaluation.report import MIN_TEST_PHANTOMS, build_context, small_test_splits

    assert MIN_TEST_PHANTOMS == 5
    text = run["html"].read_text()
    banner = re.search(r'<div class="banner"[^>]*>(.*?)</div>', text, re.DOTALL)
    assert banner and text.index(banner.group(0)) < text.index('<section id="summary">')
    words = re.sub(r"<[^>]+>", "", banner.group(1))
    assert "Fewer than 5 phantoms per family in the test split" in words
    assert "homogeneous: 2 phantoms (4 samples at 2 noise levels)" in words
    assert "inclusion: 2 phantoms (4 samples at 2 noise levels)" in words
    # The default demo's split: one phantom at two noise levels.
    one = [{"family": "liver", "seed": 7, "snr_label": label} for label in ("10", "inf")]
    assert small_test_splits(one) == [{"family": "liver", "phantoms": 1, "rows": 2, "levels": 2}]
    five = [{"family": "liver", "seed": seed, "snr_label": "inf"} for seed in range(5)]
    assert small_test_splits(five) == []
    inputs = _inputs(run)
    samples = inputs.metrics["samples"]["samples"]
    inputs.metrics["samples"]["samples"] = [
        {**sample, "seed": sample["seed"] + 1000 * k} for k in range(3) for sample in samples
    ]
    assert build_context(inputs)["banners"] == []  # 2 seeds per family, thrice: 6 phantoms


def test_training_section_names_its_model_and_log(run: dict[str, Path], tmp_path: Path) -> None:
    from dime_pipeline.evaluation.report import PRETRAINED_DIR, training_model

    training = _section(run["html"].read_text(), "training")
    assert "a model trained in this study" in training
    assert f"<code>{run['log']}</code>" in training and "shipped" not in training
    shipped_log = PRETRAINED_DIR / "dime-default.metrics.csv"
    assert shipped_log.is_file()
    text = _build(run, tmp_path / "index.html", training_log=shipped_log)
    training = _section(text, "training")
    assert "the shipped pretrained model" in training and "trained in this study" not in training
    assert f"<code>{shipped_log}</code>" in training
    assert f"<th>training log</th><td>{shipped_log}</td>" in _section(text, "provenance")
    # The DIME estimates name their model: a mismatch with the curves is said.
    provenance = {"estimates": {"dime": {"parameters": {"model": "results/dime/model.pt"}}}}
    assert training_model(shipped_log, provenance)["mismatch"]
    assert training_model(run["log"], provenance)["mismatch"] is None
    shipped = {"estimates": {"dime": {"parameters": {"model": str(PRETRAINED_DIR / "x.pt")}}}}
    assert training_model(shipped_log, shipped) == {
        "kind": "shipped",
        "model": str(PRETRAINED_DIR / "x.pt"),
        "mismatch": None,
    }


def test_bland_altman_with_too_few_points_says_so(run: dict[str, Path]) -> None:
    from dime_pipeline.evaluation import figures

    def panel(n: int) -> figures.PairedPanel:
        truth = np.linspace(3.934, 3.940, n)
        return figures.PairedPanel(
            method="dime",
            truth=truth,
            estimate=truth,
            groups=np.array(["a"] * n, object),
            roi_truth=truth,
            roi_estimate=truth + 0.001,
            roi_groups=np.array(["a"] * n, object),
            limits={"mean_difference": 0.001, "lower": 0.0009, "upper": 0.0011},
        )

    assert figures.BLAND_ALTMAN_MIN_POINTS == 5
    few, enough = figures.bland_altman_figure([panel(4), panel(5)], ["a"], "t").axes
    assert not few.collections and not few.lines  # no points, no limit lines
    assert any("too few" in t.get_text() for t in few.texts)
    assert enough.collections and not any("too few" in t.get_text() for t in enough.texts)
    # The report: a note under the homogeneous figure (4 ROI pairs), none under the inclusion one.
    text = run["html"].read_text()
    homogeneous = _section(text, "family-homogeneous")
    assert "Too few ROI pairs for a Bland–Altman plot (DIME 4 pairs" in homogeneous
    assert "Too few ROI pairs" not in _section(text, "family-inclusion")
    summary = _section(text, "summary")
    first = summary.index("<h3>inclusion</h3>")
    assert "– (4 pairs)" in summary[:first] and "– (4 pairs)" not in summary[first:]


def test_report_breaks_results_down_by_wave_pattern(run: dict[str, Path], tmp_path: Path) -> None:
    text = run["html"].read_text()
    assert '<a href="#patterns">Wave patterns</a>' in text
    section = _section(text, "patterns")
    titles = re.findall(r"<h3>([^<]+)</h3>", section)
    assert titles == [
        title
        for pattern in ("converging", "multi-driver", "absorbing")
        for title in (pattern, f"{pattern}: SNR 10", f"{pattern}: noise-free")
    ]
    assert "2 phantoms (homogeneous, inclusion), 4 samples." in section
    assert "1 phantom (inclusion), 2 samples." in section
    assert "Several drivers: their waves interfere." in section
    assert "stage agreement %" not in section  # staging is the liver family's, not a pattern's
    # Each pattern's pooled table: one row per method with its sample count, then the truth row;
    # the per-level tables: half of the samples each.
    metrics = _strict_json(run["metrics"] / "summary.json")["by_pattern"]
    tables = re.findall(r"<table[^>]*>(.*?)</table>", section, re.DOTALL)
    assert len(tables) == 3 * 3
    counts = {"converging": 4, "multi-driver": 2, "absorbing": 2}
    for k, (title, count) in enumerate(counts.items()):
        pooled = tables[3 * k]
        methods = re.findall(r"<tr><th>([^<]+)</th><td>(\d+)</td>", pooled)
        assert methods == [("DIME", str(count)), ("MMDI", str(count)), ("DI", str(count))], title
        assert "<th>ground truth</th>" in pooled
        mape = metrics[title.replace("-", "_")]["dime"]["headline"]["mape_pct"]
        dime = re.search(r"<tr><th>DIME</th>.*?</tr>", pooled).group(0)
        assert f">{mape:.1f}</" in dime  # the MAPE cell (bold when the best)
        for level in tables[3 * k + 1 : 3 * k + 3]:
            assert re.findall(r"<tr><th>DIME</th><td>(\d+)</td>", level) == [str(count // 2)]
    summary = _section(text, "summary")
    assert "per wave pattern under Wave patterns" in summary
    # Metrics written before wave patterns: the report still builds, without the section.
    old = tmp_path / "metrics"
    old.mkdir()
    for path in run["metrics"].glob("*.json"):
        document = json.loads(path.read_text())
        for key in ("by_pattern", "patterns"):
            document.pop(key, None)
        for sample in document.get("samples", []):
            sample.pop("wave_pattern")
        (old / path.name).write_text(json.dumps(document))
    text = _build(run, tmp_path / "index.html", old)
    assert 'id="patterns"' not in text and 'id="family-inclusion"' in text


def test_provenance_lists_each_noise_level_once(run: dict[str, Path]) -> None:
    from dime_pipeline.evaluation.report import build_context

    inputs = _inputs(run)
    inputs.metrics["provenance"]["snr_levels"] = ["10", "10", "inf", "10", "inf"]
    provenance = next(s for s in build_context(inputs)["sections"] if s["id"] == "provenance")
    rows = {row["head"]: row["cells"][0]["text"] for row in provenance["blocks"][0]["rows"]}
    assert rows["noise levels"] == "SNR 10, noise-free"
    assert "<th>noise levels</th><td>SNR 10, noise-free</td>" in run["html"].read_text()


class _TableParents(HTMLParser):
    """The element enclosing each <table> (tag and class)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.parents: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.parents.append(self.stack[-1] if self.stack else ("", ""))
        if tag not in ("meta", "img", "br", "link"):
            self.stack.append((tag, dict(attrs).get("class") or ""))

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop()[0] != tag:
            pass


def test_every_table_scrolls_in_a_narrow_window(run: dict[str, Path]) -> None:
    text = run["html"].read_text()
    parser = _TableParents()
    parser.feed(text)
    assert len(parser.parents) == text.count("<table") > 10
    assert set(parser.parents) == {("div", "scroll")}
    style = re.search(r"<style>(.*?)</style>", text, re.DOTALL).group(1)
    assert re.search(r"div\.scroll\s*\{[^}]*overflow-x:\s*auto", style)


def test_config_text_is_escaped_and_templates_can_be_restyled(
    run: dict[str, Path], tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text('note: "<script>alert(1)</script> & <b>"\n')
    styles = tmp_path / "templates"
    styles.mkdir()
    (styles / "report.css").write_text("body { background: #fdf6e3; }\n")
    text = _build(run, tmp_path / "index.html", config=config, template_dir=styles)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in text
    assert "<script" not in text
    assert "body { background: #fdf6e3; }" in text and "div.scroll" not in text
    assert '<section id="provenance">' in text  # the rest still comes from the shipped templates


def test_templates_ship_with_the_package() -> None:
    import tomllib

    from dime_pipeline.evaluation import report

    package = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "evaluation/templates/*" in package["package-data"]["dime_pipeline"]
    folder = Path(report.__file__).parent / "templates"
    assert {p.name for p in folder.iterdir()} >= {"report.html.j2", "_blocks.html.j2", "report.css"}


def test_snakemake_report_captions_cite_what_exists(run: dict[str, Path]) -> None:
    from dime_pipeline.evaluation.figure_set import FIGURE_KINDS

    captions = REPO / "workflow" / "report"
    rules = {p.name: p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk")}
    named = set()
    for text in rules.values():
        for name in re.findall(r'caption=f?"\.\./report/([^"]+)"', text):
            named |= (
                {name.replace("{kind}", k) for k in FIGURE_KINDS} if "{kind}" in name else {name}
            )
    named |= set(
        re.findall(r'report:\s*"workflow/report/([^"]+)"', (REPO / "Snakefile").read_text())
    )
    assert {"training.rst", "results.rst", "workflow.rst", "bland_altman.rst"} <= named
    for name in named:
        assert (captions / name).is_file(), name
    # The training curves are a report(...) output of the rule that draws them.
    evaluate = rules["evaluate.smk"]
    assert 'caption="../report/training.rst"' in evaluate and "--training-figure" in evaluate
    # Every document and section a caption cites exists: "docs/X.md, "Heading"" names a heading
    # of that document; any other quoted name is a section of the HTML report.
    titles = set(re.findall(r"<h2>([^<]+)</h2>", run["html"].read_text()))
    cited = 0
    for path in sorted(captions.glob("*.rst")):
        text = " ".join(path.read_text().split())
        for document, heading in re.findall(r'(docs/[\w./-]+\.md)(?:, "([^"]+)")?', text):
            assert (REPO / document).is_file(), (path.name, document)
            if heading:
                headings = re.findall(r"^#+\s+(.+?)\s*$", (REPO / document).read_text(), re.M)
                assert heading in headings, (path.name, document, heading)
                cited += 1
        rest = re.sub(r'docs/[\w./-]+\.md, "[^"]+"', "", text)
        for section in re.findall(r'"([^"]+)"', rest):
            assert section in titles, (path.name, section)
            cited += 1
    assert cited >= 10
