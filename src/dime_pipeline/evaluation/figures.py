"""Figures of the evaluation (matplotlib, object API on the Agg canvas: no pyplot state, no
display needed). Every function returns a :class:`~matplotlib.figure.Figure`; :func:`png_bytes`
and :func:`write_png` turn it into PNG. Stiffness is always |G*| in kPa.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap
from matplotlib.figure import Figure

from dime_pipeline.textio import write_bytes_atomic

DPI = 100
MODULUS_CMAP = "viridis"
ERROR_CMAP = "RdBu_r"
METHOD_COLOURS = {"truth": "#222222", "dime": "#1b9e77", "mmdi": "#d95f02", "di": "#7570b3"}
_EXTRA_COLOURS = ("#e7298a", "#66a61e", "#e6ab02", "#a6761d")
_GROUP_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf")
# Fewer ROI pairs than this make no Bland–Altman plot: the panel says so instead of drawing
# limits of agreement from a handful of points on a degenerate axis.
BLAND_ALTMAN_MIN_POINTS = 5
# Training-log panels, in this order when present; other metrics follow.
_TRAINING_ORDER = ("loss", "mse", "r", "mape")


def method_colour(method: str, methods: Sequence[str] = ()) -> str:
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    others = [m for m in methods if m not in METHOD_COLOURS] or [method]
    index = others.index(method) if method in others else 0
    return _EXTRA_COLOURS[index % len(_EXTRA_COLOURS)]


def group_colour(index: int) -> str:
    return _GROUP_COLOURS[index % len(_GROUP_COLOURS)]


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def write_png(figure: Figure, path: str | Path) -> Path:
    """Write the figure as PNG atomically (temporary sibling, then rename)."""
    path = Path(path)
    write_bytes_atomic(path, png_bytes(figure))
    return path


# --- maps -----------------------------------------------------------------------------------


@dataclass
class MapRow:
    """One sample: 2D maps in kPa (NaN where there is nothing to show), same shape."""

    title: str
    truth: np.ndarray
    estimates: dict[str, np.ndarray]


def maps_figure(rows: Sequence[MapRow], methods: Sequence[str], title: str = "") -> Figure:
    """Rows of ground truth | each method | each method − truth. One colour scale per row for
    the stiffness maps (0 to the row's high end) and one symmetric scale per row for the errors,
    each with its colourbar in kPa."""
    ncols = 1 + 2 * len(methods)
    figure = new_figure(1.75 * ncols + 1.4, 1.8 * len(rows) + 0.5)
    axes = np.atleast_2d(figure.subplots(len(rows), ncols, squeeze=False))
    for r, row in enumerate(rows):
        _map_row(figure, axes[r], row, methods, first=r == 0)
    if title:
        figure.suptitle(title)
    return figure


def _map_row(
    figure: Figure, axes: Sequence[Axes], row: MapRow, methods: Sequence[str], first: bool
) -> None:
    maps = [row.truth, *(row.estimates[m] for m in methods)]
    errors = [row.estimates[m] - row.truth for m in methods]
    vmax = _high_end(maps, row.truth)
    emax = max(_percentile(np.abs(errors), 98), 0.05)
    titles = [
        "ground truth",
        *(m.upper() for m in methods),
        *(f"{m.upper()} − truth" for m in methods),
    ]
    images = []
    for ax, data, name in zip(axes, [*maps, *errors], titles, strict=True):
        is_error = len(images) > len(methods)
        cmap = _cmap(ERROR_CMAP if is_error else MODULUS_CMAP)
        limits = (-emax, emax) if is_error else (0.0, vmax)
        images.append(ax.imshow(data, origin="lower", cmap=cmap, vmin=limits[0], vmax=limits[1]))
        ax.set_xticks([])
        ax.set_yticks([])
        if first:
            ax.set_title(name, fontsize=9)
    axes[0].set_ylabel(row.title, fontsize=8)
    split = 1 + len(methods)
    figure.colorbar(images[0], ax=list(axes[:split]), label="|G*| (kPa)", shrink=0.9)
    figure.colorbar(images[split], ax=list(axes[split:]), label="error (kPa)", shrink=0.9)


def _high_end(maps: Sequence[np.ndarray], truth: np.ndarray) -> float:
    """Top of a row's scale: the truth's maximum or the estimates' 98th percentile (outliers
    of a noisy inversion must not wash out the rest)."""
    top = max(_percentile(truth, 100), _percentile(np.stack(maps[1:]), 98) if maps[1:] else 0)
    return 1.05 * top if top > 0 else 1.0


def _percentile(values: np.ndarray, q: float) -> float:
    finite = np.asarray(values, float)
    finite = finite[np.isfinite(finite)]
    return float(np.percentile(finite, q)) if finite.size else 0.0


def _cmap(name: str) -> Colormap:
    from matplotlib import colormaps

    return colormaps[name].with_extremes(bad="#dddddd")  # grey: no estimate / no tissue


# --- scatter and Bland–Altman -----------------------------------------------------------------


@dataclass
class PairedPanel:
    """Paired values of one method: pixels (``truth``/``estimate``) and ROI means, each with a
    group label per value (the noise level) for colouring."""

    method: str
    truth: np.ndarray
    estimate: np.ndarray
    groups: np.ndarray
    roi_truth: np.ndarray
    roi_estimate: np.ndarray
    roi_groups: np.ndarray
    note: str = ""
    limits: dict[str, float] = field(default_factory=dict)  # Bland–Altman mean / lower / upper


def scatter_figure(panels: Sequence[PairedPanel], groups: Sequence[str], title: str) -> Figure:
    """Estimate vs truth per method: pixels (small dots) and ROI means (ringed), identity line."""
    figure = new_figure(3.3 * len(panels) + 0.6, 3.6)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    top = 1.05 * max(
        [_percentile(np.concatenate([p.truth, p.roi_truth]), 100) for p in panels]
        + [_percentile(np.concatenate([p.estimate, p.roi_estimate]), 99.5) for p in panels]
    )
    top = top if top > 0 else 1.0
    for ax, panel in zip(axes, panels, strict=True):
        # Pixels of all noise levels in one shuffled layer, so no level hides another.
        colours = np.array([group_colour(list(groups).index(g)) for g in panel.groups], object)
        order = np.random.default_rng(0).permutation(panel.truth.size)
        ax.scatter(
            panel.truth[order],
            panel.estimate[order],
            s=2,
            alpha=0.25,
            c=list(colours[order]),
            rasterized=True,
        )
        for g, name in enumerate(groups):
            pick = panel.roi_groups == name
            ax.scatter(
                panel.roi_truth[pick],
                panel.roi_estimate[pick],
                s=36,
                color=group_colour(g),
                edgecolors="black",
                linewidths=0.8,
                label=name,
            )
        ax.plot([0, top], [0, top], "k--", linewidth=1, label="identity")
        ax.set(xlim=(0, top), ylim=(0, top), aspect="equal", xlabel="ground truth |G*| (kPa)")
        ax.set_title(f"{panel.method.upper()}\n{panel.note}", fontsize=9)
        _note_if_empty(ax, panel.truth.size + panel.roi_truth.size)
    axes[0].set_ylabel("estimated |G*| (kPa)")
    axes[-1].legend(fontsize=7, loc="upper left")
    figure.suptitle(title)
    return figure


def bland_altman_figure(panels: Sequence[PairedPanel], groups: Sequence[str], title: str) -> Figure:
    """Difference (estimate − truth) vs mean of the pair, ROI means, with the mean difference
    and the 95 % limits of agreement. A panel with fewer than
    :data:`BLAND_ALTMAN_MIN_POINTS` pairs shows a note instead."""
    figure = new_figure(3.3 * len(panels) + 0.6, 3.3)
    axes = figure.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    drawn: list[Axes] = []
    for ax, panel in zip(axes, panels, strict=True):
        mean = (panel.roi_truth + panel.roi_estimate) / 2
        difference = panel.roi_estimate - panel.roi_truth
        count = int((np.isfinite(mean) & np.isfinite(difference)).sum())
        if 0 < count < BLAND_ALTMAN_MIN_POINTS:
            _too_few_note(ax, panel.method, count)
            continue
        drawn.append(ax)
        for g, name in enumerate(groups):
            pick = panel.roi_groups == name
            ax.scatter(
                mean[pick],
                difference[pick],
                s=30,
                color=group_colour(g),
                edgecolors="black",
                linewidths=0.6,
                label=name,
            )
        ax.axhline(0, color="grey", linewidth=0.8)
        _limit_lines(ax, panel.limits)
        ax.set_xlabel("mean of truth and estimate (kPa)")
        ax.set_title(f"{panel.method.upper()}\n{_limits_note(panel.limits)}", fontsize=9)
        _note_if_empty(ax, int(np.isfinite(difference).sum()))
    if drawn:
        drawn[0].set_ylabel("estimate − truth (kPa)")
        drawn[-1].legend(fontsize=7)
    figure.suptitle(title)
    return figure


def _too_few_note(ax: Axes, method: str, count: int) -> None:
    """An empty frame with the reason, not limits of agreement from a handful of points."""
    ax.set_title(method.upper(), fontsize=9)
    # tick_params, not set_yticks: the y axis is shared with the drawn panels.
    ax.tick_params(left=False, labelleft=False, bottom=False, labelbottom=False)
    ax.text(
        0.5,
        0.5,
        f"{count} ROI pair{'s' if count != 1 else ''} (fewer than "
        f"{BLAND_ALTMAN_MIN_POINTS}):\ntoo few for a\nBland–Altman plot",
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="#444444",
    )


def _limit_lines(ax: Axes, limits: Mapping[str, float]) -> None:
    """Mean difference (solid) and 95 % limits (dashed); values go in the title, not on the
    lines, where they would collide when the limits are close."""
    for key, style in (("mean_difference", "-"), ("lower", "--"), ("upper", "--")):
        value = limits.get(key)
        if value is not None and math.isfinite(value):
            ax.axhline(value, color="black", linestyle=style, linewidth=1)


def _limits_note(limits: Mapping[str, float]) -> str:
    def text(key: str) -> str:
        value = limits.get(key)
        return f"{value:+.2f}" if value is not None and math.isfinite(value) else "n/a"

    return f"mean {text('mean_difference')} kPa, limits [{text('lower')}, {text('upper')}]"


def _note_if_empty(ax: Axes, count: int) -> None:
    if count == 0:
        ax.text(0.5, 0.5, "no estimates", transform=ax.transAxes, ha="center", color="grey")


# --- curves -----------------------------------------------------------------------------------


def curves_figure(
    levels: Sequence[str],
    positions: Sequence[float] | None,
    series: Mapping[str, Sequence[Mapping[str, float | None]]],
    panels: Sequence[tuple[str, str]],
    xlabel: str,
    title: str,
) -> Figure:
    """Metric vs level, one panel per (key, axis label) in ``panels``, one line per method.
    ``positions`` None: categorical axis (e.g. SNR levels with noise-free last)."""
    figure = new_figure(3.0 * len(panels) + 0.4, 3.0)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    x = np.arange(len(levels), dtype=float) if positions is None else np.asarray(positions, float)
    for ax, (key, label) in zip(axes, panels, strict=True):
        drawn = 0
        for method, values in series.items():
            y = np.array([np.nan if v.get(key) is None else v[key] for v in values], float)
            drawn += int(np.isfinite(y).sum())
            ax.plot(x, y, "o-", color=method_colour(method, list(series)), label=method.upper())
        if positions is None:
            ax.set_xticks(x, levels)
        ax.set(xlabel=xlabel, ylabel=label)
        ax.grid(alpha=0.3)
        if drawn == 0:
            ax.text(0.5, 0.5, "not defined", transform=ax.transAxes, ha="center", color="grey")
    axes[0].legend(fontsize=8)
    figure.suptitle(title)
    return figure


# --- training ---------------------------------------------------------------------------------


def read_training_log(path: str | Path) -> dict[str, np.ndarray] | None:
    """Columns of a Lightning CSVLogger ``metrics.csv`` as float arrays (empty cells NaN); None if
    the file is missing, unreadable, or has no ``epoch`` column and metric."""
    try:
        with open(path, newline="") as stream:
            rows = list(csv.DictReader(stream))
    except (OSError, csv.Error, UnicodeDecodeError):
        return None
    if not rows or "epoch" not in rows[0]:
        return None
    columns = {name: np.array([_float(row.get(name)) for row in rows]) for name in rows[0]}
    metrics = [n for n in columns if n not in ("epoch", "step") and np.isfinite(columns[n]).any()]
    return columns if metrics and np.isfinite(columns["epoch"]).any() else None


def training_figure(log: Mapping[str, np.ndarray]) -> Figure:
    """Per-epoch means of every logged metric vs epoch, one panel per metric name (``loss``,
    ``mse``, ``r``, ``mape``, …) with its train/ and val/ curves; loss-like panels log-scaled."""
    panels = _training_panels(log)
    figure = new_figure(3.1 * len(panels) + 0.4, 3.0)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    epochs = log["epoch"]
    for ax, (name, columns) in zip(axes, panels.items(), strict=True):
        positive = True
        for column in columns:
            x, y = _per_epoch(epochs, log[column])
            positive &= bool((y > 0).all())
            ax.plot(x, y, "o-", markersize=3, label=column)
        if name in ("loss", "mse") and positive:
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel=name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.suptitle("DIME training")
    return figure


def _training_panels(log: Mapping[str, np.ndarray]) -> dict[str, list[str]]:
    panels: dict[str, list[str]] = defaultdict(list)
    for column, values in log.items():
        if column in ("epoch", "step") or not np.isfinite(values).any():
            continue
        base = column.rsplit("/", 1)[-1].removesuffix("_step").removesuffix("_epoch")
        panels[base].append(column)
    known = [name for name in _TRAINING_ORDER if name in panels]
    others = sorted(name for name in panels if name not in _TRAINING_ORDER)
    return {name: panels[name] for name in [*known, *others][:4]}


def _per_epoch(epochs: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the finite values of each epoch (resumed runs may log an epoch twice)."""
    keep = np.isfinite(epochs) & np.isfinite(values)
    x = np.unique(epochs[keep])
    return x, np.array([values[keep][epochs[keep] == e].mean() for e in x])


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan
