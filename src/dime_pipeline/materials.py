"""Frequency models of the complex shear modulus G*(ω) = G'(ω) + iG''(ω).

A phantom draws (G', G'') at a reference frequency; the model then fixes G* at any frequency, so
multi-frequency simulations of one phantom are consistent:

* ``constant``:     G*(ω) = G'_ref + iG''_ref (no dispersion; fine for one frequency)
* ``kelvin_voigt``: G*(ω) = μ + iωη with μ = G'_ref, η = G''_ref / ω_ref
* ``springpot``:    G*(ω) = κ (iω)^α with α = (2/π) atan(G''_ref/G'_ref), κ = |G*_ref| / ω_ref^α
"""

from __future__ import annotations

from typing import Literal

import numpy as np

FrequencyModel = Literal["constant", "kelvin_voigt", "springpot"]
FREQUENCY_MODELS: tuple[str, ...] = ("constant", "kelvin_voigt", "springpot")


def complex_modulus(
    model: FrequencyModel,
    storage_ref_pa: float,
    loss_ref_pa: float,
    reference_hz: float,
    frequency_hz: float,
) -> complex:
    """G* at ``frequency_hz`` of a material with G*(reference_hz) = storage + i·loss."""
    omega, omega_ref = 2 * np.pi * frequency_hz, 2 * np.pi * reference_hz
    if model == "constant":
        return complex(storage_ref_pa, loss_ref_pa)
    if model == "kelvin_voigt":
        return complex(storage_ref_pa, loss_ref_pa * omega / omega_ref)
    if model == "springpot":
        alpha = 2 / np.pi * np.arctan2(loss_ref_pa, storage_ref_pa)
        kappa = np.hypot(storage_ref_pa, loss_ref_pa) / omega_ref**alpha
        return complex(kappa * (1j * omega) ** alpha)
    raise ValueError(f"unknown frequency model {model!r} (choose from {FREQUENCY_MODELS})")
