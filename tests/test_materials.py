"""Frequency models: each reproduces the reference G* and has its textbook dispersion."""

from __future__ import annotations

import numpy as np
import pytest

from dime_pipeline.materials import FREQUENCY_MODELS, complex_modulus

REF = (3000.0, 900.0, 60.0)


@pytest.mark.parametrize("model", FREQUENCY_MODELS)
def test_reference_frequency_is_exact(model):
    assert complex_modulus(model, *REF, 60.0) == pytest.approx(complex(3000.0, 900.0))


def test_kelvin_voigt_loss_grows_linearly():
    g30, g120 = (complex_modulus("kelvin_voigt", *REF, f) for f in (30.0, 120.0))
    assert g30.real == g120.real == 3000.0
    assert g120.imag == pytest.approx(4 * g30.imag)


def test_springpot_power_law_and_constant_phase():
    values = np.array([complex_modulus("springpot", *REF, f) for f in (30.0, 60.0, 120.0)])
    phases = np.angle(values)
    assert np.allclose(phases, np.arctan2(900.0, 3000.0))
    alpha = 2 / np.pi * np.arctan2(900.0, 3000.0)
    assert abs(values[2]) / abs(values[1]) == pytest.approx(2**alpha)


def test_constant_has_no_dispersion():
    assert complex_modulus("constant", *REF, 100.0) == complex(3000.0, 900.0)
