"""One first-harmonic routine (simulated acquisitions and users' wave images) and one helper for
package versions (issue 19)."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from dime_pipeline.acquisition import encoding
from dime_pipeline.inversion.harmonic import first_harmonic, wave_images
from dime_pipeline.provenance import package_versions


@pytest.fixture
def field() -> np.ndarray:
    rng = np.random.default_rng(19)
    shape = (2, 7, 9)
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


@pytest.mark.parametrize("n", [3, 4, 5, 8])
def test_acquisition_uses_the_shared_routine_bit_for_bit(field, n):
    images = encoding.phase_images(field, 2.5e5, n)
    np.testing.assert_array_equal(images, np.moveaxis(wave_images(2.5e5 * field, n), -1, 0))
    expected = first_harmonic(images, axis=0, encoding=2.5e5)
    np.testing.assert_array_equal(encoding.first_harmonic(images, 2.5e5), expected)
    np.testing.assert_allclose(expected, field, rtol=0, atol=1e-13)


@pytest.mark.parametrize("n", [3, 4, 7])
def test_offsets_on_any_axis_give_the_same_harmonic(field, n):
    images = wave_images(field, n)
    last = first_harmonic(images, axis=-1)
    np.testing.assert_allclose(first_harmonic(np.moveaxis(images, -1, 0), axis=0), last, atol=0)
    np.testing.assert_allclose(last, field, rtol=0, atol=1e-14)


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7])
def test_background_phase_is_removed_exactly(field, n):
    background = np.linspace(-2.5, 3.7, field.size).reshape(field.shape)[..., None]
    constant = np.broadcast_to(background, (*field.shape, n))
    assert not np.any(first_harmonic(constant, remove_background=True))
    shifted = first_harmonic(wave_images(field, n) + background, remove_background=True)
    np.testing.assert_allclose(shifted, field, rtol=0, atol=1e-13)


def test_package_versions_are_python_then_each_package_in_order():
    versions = package_versions("numpy", "scipy", "dime_pipeline")
    assert list(versions) == ["python", "numpy", "scipy", "dime_pipeline"]
    assert versions["python"] == platform.python_version()
    assert versions["numpy"] == np.__version__
    assert all(isinstance(value, str) for value in versions.values())


def test_evaluation_versions_and_names_stay_importable():
    from dime_pipeline.evaluation.evaluate import (  # what report.py, figure_set.py import
        METRIC_FILES,
        Evaluation,
        RowResult,
        method_title,
        snr_title,
        versions,
    )

    assert list(versions()) == ["python", "numpy", "scipy", "zarr", "matplotlib", "dime_pipeline"]
    assert METRIC_FILES[-1] == "provenance.json" and method_title("dime") == "DIME"
    assert snr_title("inf") == "noise-free" and Evaluation and RowResult
