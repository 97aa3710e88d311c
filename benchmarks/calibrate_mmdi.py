"""Calibrate MMDI's rule (band-pass cut-offs and window relative to the expected wavenumber) on
clinical-scale liver simulations acquired with noise, and score it on a held-back half.

    snakemake --cores 2 --directory build/mmdi-fine --configfile config/mmdi-calibration.yaml \\
        --omit-from pack
    snakemake --cores 2 --directory build/mmdi-coarse --configfile config/mmdi-calibration.yaml \\
        config/mmdi-calibration-coarse.yaml --omit-from pack
    python benchmarks/calibrate_mmdi.py build/mmdi-fine build/mmdi-coarse \\
        [--out docs/data/mmdi-calibration.json] [--figure docs/images/mmdi-calibration.png]

Every liver sample of the studies is acquired at each of the studies' noise levels. Samples with an
even index form the calibration half, odd ones the held-back half. On the calibration half every
rule of the grid (``LOWPASS_SPEEDS`` × ``LOWPASS_ORDERS`` × ``HIGHPASS_SPEEDS`` ×
``WINDOW_WAVELENGTHS``) is scored by
Σ over noise levels of |median bias| + (1 − pixel r):

- median bias: per sample, the median |G*| estimate over the clinical liver ROI over the true
  median there, minus 1; then the median over samples. The ROI is drawn as clinical readers draw
  it: liver parenchyma at least 1 cm from the liver edge and from large vessels (the liver label
  eroded by 1 cm), inside the method's 95 % confidence mask (the whole ROI where fewer than
  ``MIN_CONFIDENT_PX`` of its pixels are confident);
- pixel r: Pearson r of estimated against true |G*| over the liver and what lies in it (vessels,
  lesions; where plain DI's stencil fits too), pooled over the samples of a noise level, so it
  reads both the stage-to-stage spread and the structures inside each liver.

The best rule, the previous defaults (fixed 5–80 cycles/m band, 5 px window) and plain DI are then
scored on the held-back half. Nothing in a rule depends on the ground truth: only on the driving
frequency and the pixel size (``MMDIParameters.resolved``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from common import machine, write_report
from scipy import ndimage

from dime_pipeline import exact
from dime_pipeline.inversion import DIParameters, MMDIParameters, direct_inversion
from dime_pipeline.inversion.direct import in_plane_spacing, local_fit, stencil_support
from dime_pipeline.inversion.multimodel import model_sums
from dime_pipeline.store import read_sample

LOWPASS_SPEEDS = (0.75, 0.9, 1.1, 1.25)  # m/s: low-pass at f / c
LOWPASS_ORDERS = (2, 4)
HIGHPASS_SPEEDS = (2.0, 3.0, 4.5, 6.0)  # m/s: high-pass at f / c
NOISE_DEBIAS = (False, True)
WINDOW_WAVELENGTHS = (0.2, 0.3, 0.4, 0.5)  # window side / (1.5 m/s / f)
RULE_KEYS = (
    "lowpass_speed_m_s",
    "lowpass_order",
    "highpass_speed_m_s",
    "noise_debias",
    "window_wavelengths",
)
PREVIOUS = MMDIParameters(
    window_px=5, highpass_cycles_per_m=5.0, lowpass_cycles_per_m=80.0, noise_debias=False
)
ROI_MARGIN_M = 0.01  # clinical ROIs stay 1 cm inside the liver edge and away from large vessels
MIN_CONFIDENT_PX = 20  # fewer confident ROI pixels than this: the whole ROI is read
# The defaults' provenance is kept with the docs (benchmarks/results/ holds machine timings)
DOCS = Path(__file__).resolve().parents[1] / "docs"
IMAGE = DOCS / "images" / "mmdi-calibration.png"


@dataclass
class Case:
    """One acquired liver slice: what the inversion sees and the truth it is scored against."""

    name: str
    index: int
    snr: str
    frequency_hz: float
    spacing_m: tuple[float, float]
    density_kg_m3: float
    measured: np.ndarray  # (c, y, x)
    mask: np.ndarray
    roi: np.ndarray  # the clinical liver ROI before the confidence mask
    region: np.ndarray  # the liver and what lies in it (vessels, lesions): pixel r
    truth: np.ndarray  # |G*| in Pa


@dataclass
class Score:
    """Per noise level: per-sample ROI biases and pooled Pearson sums over tissue pixels."""

    biases: dict[str, list[float]] = field(default_factory=dict)
    sums: dict[str, np.ndarray] = field(default_factory=dict)  # n, Σx, Σy, Σxx, Σyy, Σxy

    def add(
        self, case: Case, estimate: np.ndarray, valid: np.ndarray, confident: np.ndarray
    ) -> None:
        roi = case.roi & valid
        if (roi & confident).sum() >= MIN_CONFIDENT_PX:
            roi &= confident
        bias = float(np.median(estimate[roi]) / np.median(case.truth[roi]) - 1) if roi.any() else -1
        self.biases.setdefault(case.snr, []).append(bias)
        region = case.region & valid
        x, y = case.truth[region], estimate[region]
        row = np.array([x.size, x.sum(), y.sum(), x @ x, y @ y, x @ y])
        self.sums[case.snr] = self.sums.get(case.snr, np.zeros(6)) + row

    def merge(self, other: Score) -> None:
        for snr, values in other.biases.items():
            self.biases.setdefault(snr, []).extend(values)
        for snr, row in other.sums.items():
            self.sums[snr] = self.sums.get(snr, np.zeros(6)) + row

    def table(self) -> dict[str, dict[str, float]]:
        out = {}
        for snr in sorted(self.biases, key=_snr_order):
            n, sx, sy, sxx, syy, sxy = self.sums[snr]
            cov = sxy / n - sx * sy / n**2
            r = cov / np.sqrt((sxx / n - (sx / n) ** 2) * (syy / n - (sy / n) ** 2))
            biases = np.array(self.biases[snr])
            out[snr] = {
                "median_bias": float(np.median(biases)),
                "bias_iqr": [float(q) for q in np.percentile(biases, [25, 75])],
                "pixel_r": float(r),
                "samples": int(biases.size),
            }
        return out


def _snr_order(label: str) -> float:
    return float("inf") if label == "inf" else float(label)


def objective(table: dict[str, dict[str, float]]) -> float:
    return sum(abs(row["median_bias"]) + 1 - row["pixel_r"] for row in table.values())


def load_cases(studies: list[Path]) -> Iterator[Case]:
    for study in studies:
        for path in sorted((study / "results" / "acquired" / "liver").glob("*/snr-*.zarr")):
            sample = read_sample(path)
            attrs = sample.attrs
            liver = next(r for r in attrs["regions"] if r["name"] == "liver")
            spacing = in_plane_spacing(attrs["voxel_size_m"])
            is_liver = sample.labels == liver["tag"]
            margin = max(1, round(ROI_MARGIN_M / min(spacing)))
            roi = ndimage.binary_erosion(is_liver, iterations=margin)
            organ = ndimage.binary_fill_holes(is_liver) & stencil_support(sample.mask, 4)
            assert sample.measured is not None
            yield Case(
                name=f"{study.name}/{path.parent.name}",
                index=int(path.parent.name),
                snr=path.name.removeprefix("snr-").removesuffix(".zarr"),
                frequency_hz=float(attrs["frequency_hz"]),
                spacing_m=spacing,
                density_kg_m3=float(liver["density_kg_m3"]),
                measured=sample.measured,
                mask=sample.mask,
                roi=roi & sample.mask,
                region=organ,
                truth=np.abs(sample.modulus),
            )


Rule = tuple[float, int, float, bool, float]  # in the order of RULE_KEYS


def _rule(rule: Rule) -> MMDIParameters:
    return MMDIParameters(**dict(zip(RULE_KEYS, rule, strict=True)))


def _fit(
    case: Case, params: MMDIParameters, sums: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rho_omega2 = case.density_kg_m3 * (2 * np.pi * case.frequency_hz) ** 2
    modulus, _, confident, valid = local_fit(
        sums,  # type: ignore[arg-type]
        case.mask,
        rho_omega2,
        params.window_px,  # type: ignore[arg-type]
        params.confidence_threshold,
        params.debias_floor,
    )
    return np.abs(modulus), valid, confident


def admissible(rule: Rule) -> dict[str, float]:
    """The rule's errors on exact fields (60 Hz, ρ = 1000), as the tests check the defaults:
    plane waves at 6, 12 and 30 px per wavelength (1, 3 and 9 kPa, 30°, interior median; the
    issue's 2 %), the scattering scene of tests/test_inversion.py (a 15 mm inclusion 3× stiffer
    than 2 kPa, 1.5 mm pixels, three incident directions: background 5 %, inclusion centre 15 %)
    and a plane wave in a disc with zeros outside (pixels within 3 px of the edge: 5 %)."""
    from dime_pipeline.inversion import mmdi

    params, f, rho = _rule(rule), 60.0, 1000.0
    worst = 0.0
    for modulus, px in itertools.product((1000 + 200j, 3000 + 600j, 9000 + 1800j), (6, 12, 30)):
        wavelength = 2 * np.pi / exact.shear_wavenumber(modulus, f, rho).real
        h, n, border = wavelength / px, 6 * px, max(8, px // 2)
        field = exact.plane_wave(modulus, 30, (n, n), h, f, rho)[None]
        result = mmdi(field, h, f, rho, params=params)
        value = np.median(result.magnitude[border:-border, border:-border])
        worst = max(worst, abs(value / abs(modulus) - 1))
    plane = 3000 + 600j
    scene = exact.CylinderScattering(2000 + 200j, 6000 + 600j, 0.015, f, rho)
    y, x = (np.indices((128, 128)) - 63.5) * 1.5e-3
    r = np.hypot(x, y)
    result = mmdi(
        scene.field(x, y, [0.0, 2 * np.pi / 3, 4 * np.pi / 3]), 1.5e-3, f, rho, params=params
    )
    background = (r > 0.027) & (np.maximum(abs(x), abs(y)) < 0.08)
    centre = r < 0.004
    y, x = (np.indices((96, 96)) - 47.5) * 1.5e-3
    disc = np.hypot(x, y) < 0.065
    field = exact.plane_wave(plane, 30, (96, 96), 1.5e-3, f, rho)[None] * disc
    edge = disc & ~ndimage.binary_erosion(disc, iterations=3)
    at_edge = mmdi(field, 1.5e-3, f, rho, mask=disc, params=params).magnitude[edge]
    return {
        "plane_waves": worst,
        "background": float(np.median(result.magnitude[background]) / abs(scene.background) - 1),
        "inclusion_centre": float(np.median(result.magnitude[centre]) / abs(scene.inclusion) - 1),
        "mask_edge": float(np.median(at_edge) / abs(plane) - 1),
    }


ADMISSIBLE = {"plane_waves": 0.02, "background": 0.05, "inclusion_centre": 0.15, "mask_edge": 0.05}


def passes(errors: dict[str, float]) -> bool:
    return all(abs(errors[key]) <= bound for key, bound in ADMISSIBLE.items())


def sweep_case(case: Case) -> dict[Rule, Score]:
    """Every rule of the grid on one case: one band-pass per (low, order, high), every window
    reusing its fit sums."""
    scores: dict[Rule, Score] = {}
    bands = itertools.product(LOWPASS_SPEEDS, LOWPASS_ORDERS, HIGHPASS_SPEEDS)
    for band in bands:
        first = _rule((*band, True, WINDOW_WAVELENGTHS[0]))
        sums = model_sums(
            case.measured,
            case.mask,
            case.spacing_m,
            first.resolved(case.frequency_hz, case.spacing_m),
        )
        plain = replace(
            sums, noise_cross=0 * sums.noise_cross, noise_curvature=0 * sums.noise_curvature
        )
        for debias, window in itertools.product(NOISE_DEBIAS, WINDOW_WAVELENGTHS):
            rule = (*band, debias, window)
            params = _rule(rule).resolved(case.frequency_hz, case.spacing_m)
            fitted = _fit(case, params, sums if debias else plain)
            scores.setdefault(rule, Score()).add(case, *fitted)
    return scores


def compare_case(case: Case, chosen: MMDIParameters) -> dict[str, Score]:
    """The chosen rule, the previous defaults and plain DI on one case."""
    from dime_pipeline.inversion import mmdi

    out = {}
    for name, params in (("mmdi_calibrated", chosen), ("mmdi_previous", PREVIOUS)):
        result = mmdi(
            case.measured, case.spacing_m, case.frequency_hz, case.density_kg_m3, case.mask, params
        )
        out[name] = Score()
        out[name].add(case, result.magnitude, result.valid, result.confidence_mask)
    result = direct_inversion(
        case.measured, case.spacing_m, case.frequency_hz, case.density_kg_m3, case.mask
    )
    out["di"] = Score()
    out["di"].add(case, result.magnitude, result.valid, result.confidence_mask)
    return out


def _merged(parts: Iterator[dict]) -> dict:
    total: dict = {}
    for part in parts:
        for key, score in part.items():
            total.setdefault(key, Score()).merge(score)
    return total


def figure(
    path: Path, held_back: dict[str, dict], grid: dict, allowed: list, chosen: tuple
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    labels = {"mmdi_calibrated": "MMDI, calibrated", "mmdi_previous": "MMDI, previous", "di": "DI"}
    for method, table in held_back.items():
        levels = list(table)
        ticks = range(len(levels))
        axes[0].plot(
            ticks, [100 * table[s]["median_bias"] for s in levels], "o-", label=labels[method]
        )
        axes[1].plot(ticks, [table[s]["pixel_r"] for s in levels], "o-", label=labels[method])
    for ax, title in zip(
        axes[:2], ("median bias in the liver ROI (%)", "pixel r, liver"), strict=True
    ):
        ax.set_xticks(range(len(levels)), ["none" if s == "inf" else s for s in levels])
        ax.set_xlabel("OSS-SNR")
        ax.set_title(title + ", held-back half")
        ax.grid(alpha=0.3)
    axes[0].axhspan(-5, 5, color="0.9", zorder=0)
    axes[0].legend()
    heat = np.array(
        [
            [
                grid[rule] if (rule := (low, *chosen[1:4], w)) in allowed else np.nan
                for w in WINDOW_WAVELENGTHS
            ]
            for low in LOWPASS_SPEEDS
        ]
    )
    image = axes[2].imshow(heat, cmap="viridis_r", aspect="auto", origin="lower")
    axes[2].set_xticks(range(len(WINDOW_WAVELENGTHS)), [f"{w:g}" for w in WINDOW_WAVELENGTHS])
    axes[2].set_yticks(range(len(LOWPASS_SPEEDS)), [f"{c:g}" for c in LOWPASS_SPEEDS])
    axes[2].set_xlabel("window (reference wavelengths)")
    axes[2].set_ylabel("low-pass speed (m/s)")
    axes[2].set_title(
        "objective, calibration half (blank: fails the exact-field checks)\n"
        f"low-pass order {chosen[1]}, high-pass {chosen[2]:g} m/s, "
        f"noise debias {'on' if chosen[3] else 'off'}",
        fontsize=9,
    )
    fig.colorbar(image, ax=axes[2])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", type=Path, nargs="+", help="study directories (--directory)")
    parser.add_argument("--out", type=Path, default=DOCS / "data" / "mmdi-calibration.json")
    parser.add_argument("--figure", type=Path, default=IMAGE)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args(argv)

    cases = list(load_cases(args.studies))
    if not cases:
        sys.exit(f"no acquired liver stores under {', '.join(map(str, args.studies))}")
    calibration = [c for c in cases if c.index % 2 == 0]
    held = [c for c in cases if c.index % 2 == 1]
    with ProcessPoolExecutor(args.workers) as pool:
        rules = list(
            itertools.product(
                LOWPASS_SPEEDS, LOWPASS_ORDERS, HIGHPASS_SPEEDS, NOISE_DEBIAS, WINDOW_WAVELENGTHS
            )
        )
        exact_errors = dict(zip(rules, pool.map(admissible, rules, chunksize=8), strict=True))
        grid_scores = _merged(pool.map(sweep_case, calibration))
        grid = {key: objective(score.table()) for key, score in grid_scores.items()}
        allowed = [rule for rule in rules if passes(exact_errors[rule])]
        if not allowed:
            sys.exit("no rule of the grid passes the exact-field checks")
        best = min(allowed, key=grid.__getitem__)
        chosen = _rule(best)
        held_scores = _merged(pool.map(compare_case, held, itertools.repeat(chosen)))
    held_back = {name: score.table() for name, score in held_scores.items()}
    report = {
        "benchmark": "mmdi_calibration",
        "studies": [str(s) for s in args.studies],
        "cases": {"calibration": len(calibration), "held_back": len(held)},
        "frequency_hz": [min(c.frequency_hz for c in cases), max(c.frequency_hz for c in cases)],
        "pixel_mm": [
            1e3 * min(c.spacing_m[0] for c in cases),
            1e3 * max(c.spacing_m[0] for c in cases),
        ],
        "objective": "sum over noise levels of |median bias| + (1 - pixel r)",
        "admissible": {"bounds": ADMISSIBLE, "chosen_errors": exact_errors[best]},
        "grid": dict(
            zip(
                RULE_KEYS,
                (LOWPASS_SPEEDS, LOWPASS_ORDERS, HIGHPASS_SPEEDS, NOISE_DEBIAS, WINDOW_WAVELENGTHS),
                strict=True,
            )
        ),
        "chosen": dict(zip(RULE_KEYS, best, strict=True)),
        "calibration_half": {
            "chosen": grid_scores[best].table(),
            "by_rule": [
                {
                    **dict(zip(RULE_KEYS, k, strict=True)),
                    "objective": v,
                    "admissible": passes(exact_errors[k]),
                    "exact_errors": exact_errors[k],
                    "table": grid_scores[k].table(),
                }
                for k, v in sorted(grid.items())
            ],
        },
        "held_back_half": held_back,
        "previous_parameters": asdict(replace(PREVIOUS)),
        "di_parameters": asdict(DIParameters()),
        "machine": machine(),
    }
    write_report(args.out, report)
    figure(args.figure, held_back, grid, allowed, best)
    print(f"chosen rule {report['chosen']}; held-back half:")
    for name, table in held_back.items():
        row = ", ".join(
            f"{snr}: bias {100 * v['median_bias']:+.1f} % r {v['pixel_r']:.2f}"
            for snr, v in table.items()
        )
        print(f"  {name}: {row}")
    return report


if __name__ == "__main__":
    main()
