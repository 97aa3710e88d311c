"""The report's sections after the families: wave patterns, noise, sweeps, training, phantoms,
metric definitions, configuration and provenance (``report.build_context`` orders them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dime_pipeline.evaluation import figures
from dime_pipeline.evaluation.evaluate import (
    method_title,
    pattern_title,
    snr_title,
    versions,
)
from dime_pipeline.evaluation.figure_set import SWEEP_TITLES
from dime_pipeline.evaluation.report_blocks import (
    _CAPTIONS,
    _compact,
    _count,
    _entries,
    _figure,
    _figure_entry,
    _fmt,
    _h3,
    _p,
    _pct,
    _row,
    _table,
)
from dime_pipeline.evaluation.report_family import STAGED_FAMILIES, _findings, _headline_table
from dime_pipeline.evaluation.staging import STAGE_READINGS, STAGES

if TYPE_CHECKING:
    from dime_pipeline.evaluation.report import ReportInputs

# What each wave pattern of the phantoms (config.WAVE_PATTERNS) means, for the report's readers.
PATTERN_READINGS = {
    "converging": "one driver around the whole outline: waves converge on the centre",
    "multi_driver": "several drivers: their waves interfere",
    "reflecting": "one driver and a traction-free (reflecting) outer boundary, in whole or in "
    "part: standing waves",
    "absorbing": "one driver and an absorbing rest of the boundary: waves travel out, as in an "
    "unbounded medium",
}
# The package's pretrained DIME model and its training log live here (the shipped model).
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "dime" / "pretrained"

DEFINITIONS = (
    (
        "Evaluated pixels",
        "tissue pixels (ground-truth mask, |G*| > 0) where the method returned "
        "a finite estimate; coverage = evaluated / tissue pixels.",
    ),
    (
        "r (Pearson)",
        "correlation of estimated and true |G*| over the evaluated pixels (pooled "
        "over all samples of a family); undefined for a constant truth.",
    ),
    (
        "R²",
        "1 − Σ(e − t)² / Σ(t − t̄)² about the identity line (penalises bias and scale "
        "errors; can be negative), over the same pixels.",
    ),
    ("bias", "mean(e − t) in kPa; in % as 100 · mean(e − t) / mean(t). Positive: overestimation."),
    ("RMSE", "sqrt(mean((e − t)²)) in kPa over the evaluated pixels."),
    ("MAPE", "100 · mean(|e − t| / t) in % over the evaluated pixels."),
    (
        "Bland–Altman",
        "on ROI means (one pair per region and sample): mean difference e − t and "
        "95 % limits mean ± 1.96 SD (sample SD), kPa; abscissa (t + e) / 2. With fewer than "
        f"{figures.BLAND_ALTMAN_MIN_POINTS} pairs no plot is drawn and no limits are given.",
    ),
    (
        "ROI",
        "a ground-truth region eroded by one pixel (cross-shaped), so partial-volume "
        "boundary pixels and the tissue edge are left out; ROI mean = mean estimate over its "
        "estimated pixels.",
    ),
    (
        "CV",
        "inter-pixel coefficient of variation 100 · SD / mean (%) of the estimate inside the "
        "ROI of each homogeneous region (ground-truth CV ≤ 1 %), averaged over regions. The "
        "ground-truth CV is shown for reference.",
    ),
    (
        "edge 10–90 %",
        "across each inclusion boundary (ground-truth labels; the largest region "
        "is the background): mean |G*| in one-voxel bins of signed distance to the boundary within "
        "± 6 voxels, normalised between its outside and inside plateaus; distance from the 10 % "
        "to the 90 % level around the first 50 % crossing, in mm. A perfectly sharp step measures "
        "0.8 voxel; an edge whose contrast is below 20 % of the true step is unresolved.",
    ),
    (
        "stage agreement",
        "liver family only: fibrosis class (below) of the liver ROI mean of estimate vs truth; "
        "liver ROI = the region named 'liver', else the largest region. Exact agreement, "
        "within-one-class agreement and Cohen's κ.",
    ),
)


def _pattern_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    """Per wave pattern (all families pooled): the headline table over all noise levels, then
    one per noise level when there are several."""
    summary = inputs.metrics["summary"]
    levels = inputs.metrics["groups"].get("by_pattern") or {}
    samples = inputs.metrics["samples"]["samples"]
    methods = summary["methods"]
    blocks = [
        _p(
            "All families pooled per wave pattern of the phantoms, over all noise levels (with "
            "the ground truth's CV and edge width) and per noise level; the best value of each "
            "column is in bold. Phantoms simulated before wave patterns were recorded count as "
            "absorbing, the liver as reflecting (its skin was traction-free)."
        )
    ]
    for pattern, table in summary["by_pattern"].items():
        title = pattern_title(pattern)
        blocks.append(_h3(title))
        blocks.append(_p(_pattern_note(pattern, samples), "note"))
        blocks.append(_findings(table, "wave pattern"))
        blocks.append(_headline_table(table, methods, "", reference=True))
        by_level = levels.get(pattern) or {}
        if len(by_level) > 1:
            for label, level in by_level.items():
                blocks.append(_h3(f"{title}: {snr_title(label)}"))
                blocks.append(_headline_table(level, methods, "", reference=False))
    return blocks


def _pattern_note(pattern: str, samples: Sequence[dict[str, Any]]) -> str:
    """What the pattern is, and which phantoms of the test split have it."""
    rows = [s for s in samples if s.get("wave_pattern") == pattern]
    phantoms = {(s["family"], s["seed"]) for s in rows}
    families = ", ".join(sorted({family for family, _ in phantoms}))
    reading = PATTERN_READINGS.get(pattern, pattern_title(pattern))
    reading = f"{reading[0].upper()}{reading[1:]}."
    if not rows:  # samples.json written before wave patterns
        return reading
    return (
        f"{reading} {_count(len(phantoms), 'phantom')} ({families}), {_count(len(rows), 'sample')}."
    )


def _noise_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    sweeps = inputs.metrics["sweeps"]["sweeps"]["snr"]
    blocks = []
    for family, sweep in sweeps.items():
        blocks.append(_h3(family))
        entries = _entries(inputs, "noise", family)
        if not entries:
            blocks.append(_p("One noise level only: no noise curve.", "note"))
        for entry in entries:
            blocks.append(_figure_entry(inputs, entry, _CAPTIONS["noise"]))
        blocks.append(_sweep_table(sweep, [snr_title(level["label"]) for level in sweep["levels"]]))
    return blocks


def _sweeps_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    sweeps = inputs.metrics["sweeps"]["sweeps"]
    blocks = []
    for variable, name in SWEEP_TITLES.items():
        for family, sweep in sweeps[variable].items():
            blocks.append(_h3(f"{family}: {name}"))
            entries = [
                e for e in _entries(inputs, "sweeps", family) if e.get("variable") == variable
            ]
            if not entries:
                only = sweep["levels"][0]["label"] if sweep["levels"] else "–"
                blocks.append(_p(f"A single level in this study ({only}).", "note"))
                continue
            for entry in entries:
                blocks.append(_figure_entry(inputs, entry, _CAPTIONS["sweeps"]))
            blocks.append(_sweep_table(sweep, [level["label"] for level in sweep["levels"]]))
    return blocks


def _sweep_table(sweep: dict[str, Any], levels: Sequence[str]) -> dict[str, Any]:
    """MAPE and bias per level (columns) and method (rows)."""
    rows = [
        _row(
            method_title(method),
            [
                f"{_fmt(h.get('mape_pct'), '.1f')} % / {_fmt(h.get('bias_pct'), '+.1f')} %"
                for h in values
            ],
        )
        for method, values in sweep["methods"].items()
    ]
    return _table(rows, ["MAPE / bias", *levels])


def training_model(
    log_path: str | Path | None, provenance: dict[str, Any]
) -> dict[str, str | None]:
    """Which DIME model the training curves belong to: ``kind`` "shipped" (the log ships with
    the package's pretrained model) or "trained" (any other log: a model trained in this
    study), the ``model`` the DIME estimates name (None if unrecorded) and a ``mismatch``
    sentence when that model is not the one behind the curves."""
    shipped_log = log_path is not None and _inside(Path(log_path), PRETRAINED_DIR)
    dime = (provenance.get("estimates") or {}).get("dime") or {}
    model = (dime.get("parameters") or {}).get("model")
    mismatch = None
    if model is not None and _inside(Path(model), PRETRAINED_DIR) != shipped_log:
        mismatch = (
            f"The DIME estimates of this report came from {model}, which is not the model "
            "these curves belong to."
        )
    return {"kind": "shipped" if shipped_log else "trained", "model": model, "mismatch": mismatch}


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _training_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    assert inputs.training_png is not None
    info = training_model(inputs.training_log, inputs.metrics["provenance"])
    if info["kind"] == "shipped":
        which = (
            "the shipped pretrained model (dime_pipeline/dime/pretrained), trained before this "
            "study; its log ships with it"
        )
    else:
        which = "a model trained in this study (dime-pipeline train on its train and val packs)"
    facts = [
        {"term": "model", "text": which, "code": False},
        {"term": "curves from", "text": str(inputs.training_log or "–"), "code": True},
    ]
    if info["model"] is not None:
        facts.append({"term": "DIME estimates used", "text": info["model"], "code": True})
    blocks: list[dict[str, Any]] = [{"type": "facts", "items": facts}]
    if info["mismatch"]:
        blocks.append(_p(info["mismatch"], "warning"))
    title = "DIME training (shipped model)" if info["kind"] == "shipped" else "DIME training"
    blocks.append(_figure(inputs.training_png, title, _TRAINING_CAPTION))
    return blocks


def _previews_blocks(previews: Sequence[tuple[str, bytes]]) -> list[dict[str, Any]]:
    items = [
        _figure(data, name, f"Phantom preview {name}.", css="preview") for name, data in previews
    ]
    return [{"type": "row", "blocks": items}]


def _definitions_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "dl", "items": [list(d) for d in DEFINITIONS]}]
    if not any(f in STAGED_FAMILIES for f in inputs.metrics["summary"]["families"]):
        return blocks
    return [
        *blocks,
        _h3("Fibrosis classes (liver family)"),
        _p(
            "Clinical MRE cut-offs at 60 Hz; < 2.5 kPa (normal) and 2.5–2.9 kPa (normal or "
            "inflammation) are merged into F0. Intervals are [lower, upper)."
        ),
        _table([_row(s, [r]) for s, r in zip(STAGES, STAGE_READINGS, strict=True)]),
    ]


def _config_blocks(text: str | None) -> list[dict[str, Any]]:
    if text is None:
        return [_p("No configuration file was given to the report.", "note")]
    return [{"type": "pre", "text": text}]


def _provenance_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    prov = inputs.metrics["provenance"]
    truth = prov["truth"]
    noise = list(dict.fromkeys(snr_title(str(s)) for s in prov.get("snr_levels", [])))
    rows = [
        ("report created (UTC)", datetime.now(UTC).isoformat(timespec="seconds")),
        ("metrics created (UTC)", prov.get("created_utc")),
        ("config hash", prov.get("config_hash")),
        ("config hash shared by all inputs", prov.get("config_hash_consistent")),
        ("test set", f"{truth['path']} (split {truth.get('split')}, {truth['n_samples']} rows)"),
        ("families", ", ".join(truth.get("families") or [])),
        ("noise levels", ", ".join(noise)),
        ("source stores", len(truth.get("sources") or [])),
        ("evaluation parameters", _compact(prov.get("parameters"))),
        ("versions (evaluation)", _compact(prov.get("versions"))),
        ("versions (report)", _compact(versions())),
        ("versions (test set)", _compact(truth.get("versions"))),
    ]
    if inputs.training_log is not None:
        rows.append(("training log", str(inputs.training_log)))
    for method, info in prov.get("estimates", {}).items():
        rows.append(
            (
                f"{method_title(method)} estimates",
                f"{info['path']} from {info.get('source')}, config hash "
                f"{info.get('config_hash')}, {_fmt(info.get('seconds_total'), '.1f')} s; "
                f"parameters {_compact(info.get('parameters'))}",
            )
        )
    blocks = [_table([_row(k, [str(v)]) for k, v in rows], css="prov")]
    sources = [str(s) for s in truth.get("sources") or []]
    if sources:
        blocks.append({"type": "details", "summary": "source stores", "items": sources})
    return blocks


_TRAINING_CAPTION = (
    "Per-epoch means of the logged training and validation metrics (Lightning CSV log)."
)


def _confidence_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    """Per method whose confidence is an error bar: its calibration curve and a table of the
    observed coverage per nominal level, over all pixels and per noise level."""
    blocks: list[dict[str, Any]] = [
        _p(
            "How often the truth lies inside the method's predicted band ln|Ĝ| ± z·σ: a "
            "calibrated confidence covers each nominal level within 5 points (docs/dime.md).",
            "note",
        )
    ]
    for method, coverage in inputs.metrics["summary"]["coverage"].items():
        blocks.append(_h3(method_title(method)))
        for entry in (e for e in inputs.figures if e.get("kind") == "confidence"):
            if entry.get("method") == method:
                blocks.append(_figure_entry(inputs, entry, _CONFIDENCE_CAPTION))
        levels = [f"{level:g}" for level in coverage["levels"]]
        rows = [_row("all", [_fmt(_pct_of(coverage["all"], lv), ".1f") for lv in levels])]
        rows += [
            _row(snr_title(label), [_fmt(_pct_of(curve, lv), ".1f") for lv in levels])
            for label, curve in coverage["by_snr"].items()
        ]
        header = ["noise", *(f"{100 * float(lv):g} % band" for lv in levels)]
        blocks.append(_table(rows, header))
    return blocks


def _pct_of(curve: dict[str, Any], level: str) -> float | None:
    value = curve.get(level)
    return None if value is None else 100.0 * value


_CONFIDENCE_CAPTION = (
    "Observed against nominal coverage of the confidence bands on the test set, over all pixels "
    "and per noise level; dashed: identity, grey: ±5 points."
)


def _wavelength_blocks(inputs: ReportInputs) -> list[dict[str, Any]]:
    """The wavelength sweep's figure and, per inclusion diameter, pixel r / inclusion bias of
    every method (rows) at every px per wavelength (columns)."""
    assert inputs.wavelength is not None
    document, png = inputs.wavelength
    scene = document.get("scene", {})
    blocks = [
        _p(
            "Every method on exact scattering scenes: a cylinder "
            f"{_fmt(scene.get('contrast'), 'g')}× stiffer than the background, lit from three "
            "directions, sampled at the pixels per wavelength of the columns. Cells: pixel r "
            "near the cylinder / median |G*| bias inside it (`dime-pipeline wavelength-sweep`, "
            "docs/evaluation.md).",
            "note",
        ),
        _figure(png, "wavelength sweep", _WAVELENGTH_CAPTION),
    ]
    px = document["px_per_wavelength"]
    for diameter in document["diameters_wavelengths"]:
        key = f"{diameter:g}"
        blocks.append(_h3(f"Inclusion {key} wavelength(s) across"))
        rows = []
        for method, by_diameter in document["methods"].items():
            cells = [
                f"{_fmt(row.get('pixel_r'), '.2f')} / "
                f"{_fmt(_pct(row.get('inclusion_bias')), '+.0f')} %"
                for row in by_diameter.get(key, [])
            ]
            rows.append(_row(method_title(method), cells))
        blocks.append(_table(rows, ["method", *(f"{p:g} px/λ" for p in px)]))
    return blocks


_WAVELENGTH_CAPTION = (
    "Pixel r (top) and median |G*| bias inside the inclusion (bottom, grey: ±10 %) against the "
    "pixels per background wavelength, one column per inclusion diameter."
)
