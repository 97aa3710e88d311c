"""The report's vocabulary: the blocks the template renders (sections, headings, paragraphs,
tables, figures) and the formatting of their values. Shared by the section builders
(``report_family``, ``report_sections``) and ``report``."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dime_pipeline.errors import UserError

if TYPE_CHECKING:
    from dime_pipeline.evaluation.report import ReportInputs

# --- blocks (the template's vocabulary) -------------------------------------------------------


def _section(sid: str, title: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": sid, "title": title, "blocks": blocks}


def _h3(text: str) -> dict[str, Any]:
    return {"type": "h3", "text": text}


def _p(text: str, css: str = "") -> dict[str, Any]:
    return {"type": "p", "text": text, "css": css}


def _table(
    rows: list[dict[str, Any]], header: Sequence[str] = (), css: str = "metrics"
) -> dict[str, Any]:
    return {"type": "table", "css": css, "header": list(header), "rows": rows}


def _row(head: str | None, cells: Sequence[str | dict[str, Any]], css: str = "") -> dict[str, Any]:
    """A table row: ``head`` (a header cell, or None) then data cells (text, or {text, bold})."""
    return {
        "head": head,
        "css": css,
        "cells": [c if isinstance(c, dict) else {"text": c, "bold": False} for c in cells],
    }


def _figure(data: bytes, alt: str, caption: str, css: str = "") -> dict[str, Any]:
    encoded = base64.b64encode(data).decode("ascii")
    return {"type": "figure", "data": encoded, "alt": alt, "caption": caption, "css": css}


# --- pieces -----------------------------------------------------------------------------------

_CAPTIONS = {
    "maps": "|G*| maps in kPa: ground truth, each method, and each method minus the truth. One "
    "colour scale per row (stiffness) and one symmetric scale per row (error); grey: no "
    "estimate or outside the tissue.",
    "scatter": "Estimated vs true |G*|: pixels (dots, subsampled) and ROI means (ringed), "
    "coloured by noise level; dashed: identity. r and MAPE over all evaluated pixels.",
    "bland_altman": "Bland–Altman of ROI means: difference (estimate − truth) against their mean, "
    "with the mean difference and the 95 % limits of agreement (± 1.96 SD).",
    "noise": "Metrics against the noise level (amplitude SNR; noise-free on the right), pooled "
    "over the family's samples at each level.",
    "sweeps": "Metrics against the swept acquisition parameter, pooled over the samples in each "
    "level (equal-count bins when the values vary continuously).",
}


def _entries(inputs: ReportInputs, kind: str, family: str) -> list[dict[str, Any]]:
    return [e for e in inputs.figures if e.get("kind") == kind and e.get("family") == family]


def _figure_entry(inputs: ReportInputs, entry: dict[str, Any], caption: str) -> dict[str, Any]:
    path = inputs.figures_dir / entry["path"]
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"{path}: figure listed in the manifest is missing ({error})") from None
    return _figure(data, entry.get("title", path.stem), caption)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if _finite(value) else "–"


def _pct(value: Any) -> float | None:
    return 100.0 * value if _finite(value) else None


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False) if value is not None else "–"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
