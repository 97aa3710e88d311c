"""What an inversion returns: complex modulus, confidence and the quantities derived from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InversionResult:
    """Maps on the spatial grid ([z,] y, x) of the input, SI units, zero outside ``valid``.

    modulus          complex G* = G' + iG'' in Pa (estimates may have G'' < 0 under noise; kept)
    confidence       fraction of the local fit's variance explained, 0..1
    confidence_mask  confidence ≥ the method's threshold (95 % by default)
    valid            in-mask pixels that received an estimate
    density_kg_m3    ρ used, kept so that the derived quantities below are self-contained
    """

    modulus: np.ndarray
    confidence: np.ndarray
    confidence_mask: np.ndarray
    valid: np.ndarray
    density_kg_m3: float

    @property
    def magnitude(self) -> np.ndarray:
        """|G*| in Pa, the clinical "stiffness"."""
        return np.abs(self.modulus)

    @property
    def storage(self) -> np.ndarray:
        """G' in Pa."""
        return self.modulus.real

    @property
    def loss(self) -> np.ndarray:
        """G'' in Pa."""
        return self.modulus.imag

    @property
    def shear_stiffness(self) -> np.ndarray:
        """ρc² in Pa, with c = ω/Re(k), k = ω√(ρ/G*): equals 2|G*|²/(|G*| + G')."""
        magnitude = self.magnitude
        denominator = magnitude + self.storage
        out = np.zeros_like(magnitude)
        np.divide(2.0 * magnitude**2, denominator, out=out, where=self.valid & (denominator > 0))
        return out
