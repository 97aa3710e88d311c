"""The results report: one self-contained HTML file (inline CSS, figures as base64 PNG, no
external resources) that opens from disk.

Order: summary table per family × method (at a glance), one section per family (tables, maps,
scatter, Bland–Altman, staging for the liver family, ROIs, edges), wave patterns (tables per
pattern × method, all families pooled), noise, confidence (DIME's band coverage), sweeps,
training, phantoms, metric definitions, config and provenance. Built from
``results/metrics/*.json`` and the figures that ``dime-pipeline evaluate`` wrote
(``manifest.json``). This module reads the inputs and assembles the page; the sections are
built in ``report_family`` (summary, families) and ``report_sections`` (the rest), from the
vocabulary of ``report_blocks``.

The page is a Jinja2 template (``templates/report.html.j2``, its blocks ``_blocks.html.j2`` and
style ``report.css``, autoescaped) filled with the plain data of :func:`build_context`: restyle
it by passing ``template_dir`` (or setting ``$DIME_REPORT_TEMPLATES``) to a folder holding files
of the same names, which replace the shipped ones.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from dime_pipeline.errors import UserError
from dime_pipeline.evaluation import figures
from dime_pipeline.evaluation.evaluate import (
    METRIC_FILES,
    method_title,
)
from dime_pipeline.evaluation.figure_set import read_manifest
from dime_pipeline.evaluation.report_blocks import _count, _section
from dime_pipeline.evaluation.report_family import _family_blocks, _summary_blocks
from dime_pipeline.evaluation.report_sections import (
    PRETRAINED_DIR,
    _confidence_blocks,
    _config_blocks,
    _definitions_blocks,
    _noise_blocks,
    _pattern_blocks,
    _previews_blocks,
    _provenance_blocks,
    _sweeps_blocks,
    _training_blocks,
    _wavelength_blocks,
    training_model,
)
from dime_pipeline.textio import write_text_atomic

__all__ = [
    "MIN_TEST_PHANTOMS",
    "PRETRAINED_DIR",
    "ReportInputs",
    "build_context",
    "build_report",
    "load_metrics",
    "render",
    "small_test_splits",
    "training_model",
]

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEMPLATE = "report.html.j2"
TEMPLATES_ENV = "DIME_REPORT_TEMPLATES"
# A family whose test split holds fewer phantoms than this gets a banner: its numbers describe
# those few phantoms, not the method.
MIN_TEST_PHANTOMS = 5


@dataclass
class ReportInputs:
    metrics: dict[str, dict[str, Any]]
    figures: list[dict[str, Any]]
    figures_dir: Path
    config_text: str | None = None
    training_png: bytes | None = None
    previews: list[tuple[str, bytes]] = field(default_factory=list)
    training_log: Path | None = None  # where the curves of training_png come from
    wavelength: tuple[dict[str, Any], bytes] | None = None  # `wavelength-sweep` JSON and PNG


def build_report(
    metrics_dir: str | Path,
    figures_dir: str | Path,
    out: str | Path,
    config: str | Path | None = None,
    training_log: str | Path | None = None,
    previews: Sequence[str | Path] = (),
    training_figure: str | Path | None = None,
    template_dir: str | Path | None = None,
    wavelength_sweep: Sequence[str | Path] | None = None,
) -> Path:
    """Write the HTML report to ``out`` (atomically); ``training_figure`` also keeps the training
    curves as a PNG file (for ``snakemake --report``); ``template_dir`` (default
    ``$DIME_REPORT_TEMPLATES``) holds templates that replace the shipped ones of the same name."""
    metrics = load_metrics(metrics_dir)
    manifest = read_manifest(figures_dir)
    config_text = _read_config(config)
    training_png = _training_png(training_log, training_figure)
    inputs = ReportInputs(
        metrics=metrics,
        figures=manifest,
        figures_dir=Path(figures_dir),
        config_text=config_text,
        training_png=training_png,
        previews=[_read_png(Path(p)) for p in previews],
        training_log=Path(training_log) if training_png is not None and training_log else None,
        wavelength=_read_sweep(wavelength_sweep) if wavelength_sweep else None,
    )
    text = render(inputs, template_dir)
    try:
        write_text_atomic(out, text)
    except OSError as error:
        raise UserError(f"cannot write {out} ({error.strerror or error})") from None
    return Path(out)


def load_metrics(metrics_dir: str | Path) -> dict[str, dict[str, Any]]:
    documents = {}
    for name in METRIC_FILES:
        path = Path(metrics_dir) / name
        try:
            documents[name.removesuffix(".json")] = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"{path}: not readable metrics ({error})") from None
    return documents


def _read_config(path: str | Path | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text()
    except OSError as error:
        raise UserError(f"cannot read config {path}: {error.strerror or error}") from None


def _training_png(log_path: str | Path | None, keep: str | Path | None) -> bytes | None:
    if log_path is None:
        return None
    columns = figures.read_training_log(log_path)
    if columns is None:
        log.warning("%s: no readable training log; the training section is left out", log_path)
        return None
    figure = figures.training_figure(columns)
    if keep is not None:
        figures.write_png(figure, keep)
    return figures.png_bytes(figure)


def _read_sweep(paths: Sequence[str | Path]) -> tuple[dict[str, Any], bytes]:
    """The wavelength sweep's (document, PNG bytes); UserError naming a missing or bad file."""
    document_path, figure_path = map(Path, paths)
    try:
        document = json.loads(document_path.read_text())
        if "methods" not in document:
            raise KeyError("methods")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{document_path}: not a wavelength sweep ({error})") from None
    return document, _read_png(figure_path)[1]


def _read_png(path: Path) -> tuple[str, bytes]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    if not data.startswith(PNG_SIGNATURE):
        raise UserError(f"{path}: not a PNG file")
    return path.name, data


# --- rendering --------------------------------------------------------------------------------


def render(inputs: ReportInputs, template_dir: str | Path | None = None) -> str:
    """The whole HTML document: :data:`TEMPLATE` filled with :func:`build_context`."""
    try:
        template = environment(template_dir).get_template(TEMPLATE)
        return template.render(build_context(inputs))
    except jinja2.TemplateError as error:
        where = f" ({error.filename}:{error.lineno})" if hasattr(error, "lineno") else ""
        raise UserError(f"report template{where}: {error.message or error}") from None


def environment(template_dir: str | Path | None = None) -> jinja2.Environment:
    """Jinja2 with autoescape on: ``template_dir`` (else ``$DIME_REPORT_TEMPLATES``) first, then
    the templates shipped in this package."""
    template_dir = template_dir or os.environ.get(TEMPLATES_ENV) or None
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise UserError(f"report templates: {template_dir} is not a folder")
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders.append(jinja2.PackageLoader("dime_pipeline.evaluation", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def build_context(inputs: ReportInputs) -> dict[str, Any]:
    """The template's data, all plain (strings, numbers already formatted, lists, dicts):
    ``title``, ``methods``, ``banners`` ({title, text}) and ``sections`` ({id, title, blocks});
    a block is a dict whose ``type`` names its macro in ``_blocks.html.j2``."""
    summary = inputs.metrics["summary"]
    sections = [_section("summary", "Summary", _summary_blocks(inputs))]
    for family in summary["families"]:
        sections.append(
            _section(f"family-{family}", f"Family: {family}", _family_blocks(inputs, family))
        )
    if summary.get("by_pattern"):  # metrics written before wave patterns have none
        sections.append(_section("patterns", "Wave patterns", _pattern_blocks(inputs)))
    sections.append(_section("noise", "Noise", _noise_blocks(inputs)))
    if summary.get("coverage"):  # DIME evaluated (and metrics newer than calibration)
        sections.append(_section("confidence", "Confidence", _confidence_blocks(inputs)))
    if inputs.wavelength is not None:
        sections.append(_section("wavelength", "Wavelength sweep", _wavelength_blocks(inputs)))
    sections.append(_section("sweeps", "Frequency and voxel size", _sweeps_blocks(inputs)))
    if inputs.training_png is not None:
        sections.append(_section("training", "Training", _training_blocks(inputs)))
    if inputs.previews:
        sections.append(_section("phantoms", "Phantoms", _previews_blocks(inputs.previews)))
    sections.append(_section("definitions", "Metric definitions", _definitions_blocks(inputs)))
    sections.append(_section("config", "Configuration", _config_blocks(inputs.config_text)))
    sections.append(_section("provenance", "Provenance", _provenance_blocks(inputs)))
    return {
        "title": "dime-pipeline results",
        "methods": [method_title(m) for m in summary["methods"]],
        "banners": _banners(inputs),
        "sections": sections,
    }


# --- banners ----------------------------------------------------------------------------------


def small_test_splits(samples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Families whose test split holds fewer than :data:`MIN_TEST_PHANTOMS` phantoms (distinct
    seeds): {family, phantoms, rows, levels}, in the order the families first appear."""
    seeds: dict[str, set[Any]] = {}
    levels: dict[str, set[str]] = {}
    rows: dict[str, int] = {}
    for sample in samples:
        family = sample["family"]
        seeds.setdefault(family, set()).add(sample["seed"])
        levels.setdefault(family, set()).add(sample["snr_label"])
        rows[family] = rows.get(family, 0) + 1
    return [
        {
            "family": family,
            "phantoms": len(seeds[family]),
            "rows": rows[family],
            "levels": len(levels[family]),
        }
        for family in rows
        if len(seeds[family]) < MIN_TEST_PHANTOMS
    ]


def _banners(inputs: ReportInputs) -> list[dict[str, str]]:
    small = small_test_splits(inputs.metrics["samples"]["samples"])
    if not small:
        return []
    listing = "; ".join(
        f"{s['family']}: {_count(s['phantoms'], 'phantom')} ({_count(s['rows'], 'sample')} "
        f"at {_count(s['levels'], 'noise level')})"
        for s in small
    )
    return [
        {
            "title": "Test split too small to mean much.",
            "text": f"Fewer than {MIN_TEST_PHANTOMS} phantoms per family in the test split — "
            f"{listing}. Every number below describes these few phantoms, not the methods; "
            "differences between methods may be chance. Raise samples (or "
            "datasets.fractions.test) in the config for conclusions.",
        }
    ]
