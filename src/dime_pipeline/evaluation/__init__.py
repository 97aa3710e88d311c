"""Evaluation of inversions against the ground truth: metrics, fibrosis staging, figures and the
self-contained HTML report.

* :mod:`~dime_pipeline.evaluation.metrics`: pure numpy metrics on |G*| maps (kPa).
* :mod:`~dime_pipeline.evaluation.resolution`: where a map's error sits (boundary bands, thin
  structures) and the truth blurred at a fraction of the wavelength, the reference for its r.
* :mod:`~dime_pipeline.evaluation.staging`: fibrosis class from |G*| with the clinical cut-offs.
* :mod:`~dime_pipeline.evaluation.evaluate`: a test pack vs estimates stores → metrics JSON.
* :mod:`~dime_pipeline.evaluation.figures`, :mod:`~dime_pipeline.evaluation.figure_set`:
  matplotlib figures (Agg) and the evaluation's figure folder.
* :mod:`~dime_pipeline.evaluation.report`: ``results/report/index.html``.

Submodules are imported on use (matplotlib is slow to import).
"""
