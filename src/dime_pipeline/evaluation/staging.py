"""Liver fibrosis stage from |G*| (kPa) with the clinical MRE cut-offs, and stage agreement.

The clinical table (MMDI-type |G*| at 60 Hz, ``docs/physics.md``) has six readings:

=============  ================================
|G*| (kPa)     reading
=============  ================================
< 2.5          normal
2.5 – 2.9      normal or inflammation
2.9 – 3.5      fibrosis stage 1–2
3.5 – 4.0      stage 2–3
4.0 – 5.0      stage 3–4
≥ 5.0          stage 4 (cirrhosis)
=============  ================================

The evaluation uses **five classes**: the first two readings are merged into ``F0`` ("no
fibrosis": normal or inflammation, < 2.9 kPa), because neither indicates fibrosis and inflammation
cannot be simulated. Intervals are half-open, [lower, upper): exactly 2.9 kPa is ``F1-2``.

=====  =========  ===================================
index  class      |G*| interval (kPa)
=====  =========  ===================================
0      ``F0``     [0, 2.9)   normal or inflammation
1      ``F1-2``   [2.9, 3.5)
2      ``F2-3``   [3.5, 4.0)
3      ``F3-4``   [4.0, 5.0)
4      ``F4``     [5.0, ∞)   cirrhosis
=====  =========  ===================================

The cut-offs are for 60 Hz; simulated samples at other frequencies are staged with the same
cut-offs (a model-agreement check, not a clinical claim).
"""

from __future__ import annotations

from typing import Any

import numpy as np

STAGE_CUTOFFS_KPA = (2.9, 3.5, 4.0, 5.0)
STAGES = ("F0", "F1-2", "F2-3", "F3-4", "F4")
STAGE_READINGS = (
    "no fibrosis: normal or inflammation (< 2.9 kPa)",
    "fibrosis stage 1-2 (2.9-3.5 kPa)",
    "stage 2-3 (3.5-4.0 kPa)",
    "stage 3-4 (4.0-5.0 kPa)",
    "stage 4, cirrhosis (>= 5.0 kPa)",
)
NO_STAGE = -1


def fibrosis_stage(stiffness_kpa: np.ndarray | float) -> np.ndarray:
    """Class index (0..4, see the module table) of each |G*| value in kPa; ``NO_STAGE`` (-1) for
    NaN, infinite or negative values."""
    values = np.asarray(stiffness_kpa, dtype=float)
    stages = np.searchsorted(np.asarray(STAGE_CUTOFFS_KPA), values, side="right")
    invalid = ~np.isfinite(values) | (values < 0)
    return np.where(invalid, NO_STAGE, stages).astype(int)


def confusion_matrix(truth_stages: np.ndarray, estimate_stages: np.ndarray) -> np.ndarray:
    """5 × 5 counts: row = ground-truth class, column = estimated class. Pairs where either side
    is ``NO_STAGE`` are left out."""
    truth = np.asarray(truth_stages, dtype=int).ravel()
    estimate = np.asarray(estimate_stages, dtype=int).ravel()
    keep = (truth != NO_STAGE) & (estimate != NO_STAGE)
    n = len(STAGES)
    matrix = np.zeros((n, n), dtype=int)
    np.add.at(matrix, (truth[keep], estimate[keep]), 1)
    return matrix


def stage_agreement(matrix: np.ndarray) -> dict[str, Any]:
    """Agreement statistics of a confusion matrix.

    ``n``: staged pairs; ``exact``: fraction on the diagonal; ``within_one``: fraction at most one
    class apart; ``kappa``: Cohen's κ = (p_o − p_e) / (1 − p_e), p_e from the marginals (NaN when
    p_e = 1, i.e. both sides always name the same single class, or n = 0).
    """
    matrix = np.asarray(matrix, dtype=float)
    n = matrix.sum()
    if n == 0:
        nan = float("nan")
        return {"n": 0, "exact": nan, "within_one": nan, "kappa": nan}
    rows, cols = np.indices(matrix.shape)
    observed = np.trace(matrix) / n
    within = matrix[np.abs(rows - cols) <= 1].sum() / n
    expected = float(matrix.sum(axis=1) @ matrix.sum(axis=0)) / n**2
    kappa = (observed - expected) / (1 - expected) if expected < 1 else float("nan")
    return {
        "n": int(n),
        "exact": float(observed),
        "within_one": float(within),
        "kappa": float(kappa),
    }
