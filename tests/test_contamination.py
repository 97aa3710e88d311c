"""Compressional waves and bulk motion in the acquisition model (``acquisition.contamination``):
the requested relative amplitudes exactly, the shear field and the noise untouched, and how much
of them MMDI's band-pass removes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import fft

from dime_pipeline.acquisition import AcquisitionParams, acquire
from dime_pipeline.errors import UserError
from dime_pipeline.inversion.filters import butterworth_bandpass, extend_field
from dime_pipeline.inversion.multimodel import MMDIParameters
from dime_pipeline.store import Sample

N, H, F = 96, 2e-3, 60.0  # a 19 cm field of view of 2 mm pixels at 60 Hz


def _shear_sample() -> Sample:
    """Plane shear waves (2 m/s) in a disc: in-plane transverse and out-of-plane."""
    y, x = np.mgrid[0:N, 0:N] * H
    mask = (x - N * H / 2) ** 2 + (y - N * H / 2) ** 2 < (0.4 * N * H) ** 2
    k = 2 * np.pi * F / 2.0
    wave = np.exp(-1j * k * (0.6 * x + 0.8 * y))
    field = np.stack([0.8 * wave, -0.6 * wave, np.exp(-1j * k * x)]) * 1e-6 * mask
    attrs = {
        "family": "homogeneous",
        "seed": 1,
        "dim": 2,
        "frequency_hz": F,
        "voxel_size_m": [H, H],
        "density_kg_m3": 1000.0,
        "config_hash": "test",
        "components": ["x", "y", "z"],
    }
    modulus = np.where(mask, 4000.0 + 400j, 0)
    return Sample(field, modulus, mask, mask.astype(np.int16), attrs)


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.abs(values) ** 2)))


@pytest.mark.parametrize(
    ("kind", "amplitude"), [("compressional", 0.5), ("bulk", 0.3), ("compressional", 2.0)]
)
def test_parts_have_the_requested_relative_amplitude(kind, amplitude):
    sample = _shear_sample()
    acquired = acquire(sample, AcquisitionParams(**{kind: amplitude}), seed=3)
    mask = acquired.mask
    part = acquired.measured - acquired.displacement  # noise-free: the shear part removed
    assert _rms(part[:, mask]) / _rms(acquired.displacement[:, mask]) == pytest.approx(
        amplitude, rel=1e-9
    )
    facts = acquired.attrs["acquisition"]["contamination"]
    assert facts[kind]["relative_rms"] == pytest.approx(amplitude, rel=1e-12)
    other = "bulk" if kind == "compressional" else "compressional"
    assert facts[other] is None
    np.testing.assert_array_equal(
        acquired.displacement, acquire(sample, AcquisitionParams(), 3).displacement
    )
    if kind == "bulk":  # rigid: one complex vector over the whole mask
        vector = part[:, mask][:, :1]
        np.testing.assert_allclose(
            part[:, mask], np.broadcast_to(vector, part[:, mask].shape), atol=1e-18
        )
    else:  # longitudinal: the motion of every voxel lies along the waves' directions
        waves = facts[kind]["waves"]
        assert len(waves) == 2 and facts[kind]["wavelength_m"] == pytest.approx(1540 / F)
        directions = np.array([w["direction"] for w in waves])
        normal = np.cross(*directions)
        assert (
            np.abs(np.tensordot(normal, part, axes=(0, 0))[mask]).max() < 1e-9 * np.abs(part).max()
        )


def test_switching_contamination_on_leaves_the_noise_alone():
    sample = _shear_sample()
    for offsets in (0, 4):
        plain = acquire(sample, AcquisitionParams(snr=5.0, offsets=offsets), seed=11)
        mixed = acquire(
            sample, AcquisitionParams(snr=5.0, offsets=offsets, compressional=0.4, bulk=0.2), 11
        )
        clean = acquire(sample, AcquisitionParams(compressional=0.4, bulk=0.2), 11)
        contamination = clean.measured - clean.displacement
        scale = np.abs(plain.measured).max()
        np.testing.assert_allclose(
            mixed.measured - contamination, plain.measured, atol=1e-12 * scale
        )
        # the SNR is the shear field's: the same noise level whatever is added
        assert mixed.attrs["acquisition"]["snr"] == pytest.approx(5.0, rel=1e-9)


def test_contamination_off_is_the_plain_acquisition():
    sample = _shear_sample()
    plain = acquire(sample, AcquisitionParams(snr=10.0), seed=2)
    assert plain.attrs["acquisition"]["contamination"] is None
    zero = acquire(sample, AcquisitionParams(snr=10.0, compressional=0.0, bulk=0.0), seed=2)
    np.testing.assert_array_equal(plain.measured, zero.measured)


def _bandpassed(field: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What MMDI's default band-pass leaves of each component (its extension and filter)."""
    params = MMDIParameters().resolved(F, (H, H))
    pad = params.pad_px((H, H))
    shape = (fft.next_fast_len(N + 2 * pad),) * 2
    gain = butterworth_bandpass(
        shape,
        (H, H),
        float(params.highpass_cycles_per_m),
        float(params.lowpass_cycles_per_m),
        params.highpass_order,
        params.lowpass_order,
    )
    crop = (slice(pad, pad + N), slice(pad, pad + N))
    return np.stack(
        [fft.ifft2(fft.fft2(extend_field(c, mask, pad), s=shape) * gain)[crop] for c in field]
    )


@pytest.mark.parametrize("kind", ["compressional", "bulk"])
def test_mmdi_bandpass_removes_most_of_it_and_keeps_the_shear_waves(kind):
    """Measured with the calibrated defaults (a 20–55 cycles/m band at 60 Hz): 2.1 % of either
    part's RMS is left on this 19 cm disc, and 88.5 % of the 2 m/s shear waves' (30 cycles/m, on
    the high-pass's slope: a uniform gain, which the ratio G* = −ρω² S/E cancels). The previous
    fixed 5–80 cycles/m band left 29 % and kept 99.5 %. Bounds: nearly all removed (< 5 % left),
    the shear waves passed (> 80 %)."""
    sample = _shear_sample()
    mask = sample.mask
    for seed in range(3):
        acquired = acquire(sample, AcquisitionParams(**{kind: 1.0}), seed)
        part = acquired.measured - acquired.displacement
        left = _rms(_bandpassed(part, mask)[:, mask]) / _rms(part[:, mask])
        assert left < 0.05
    kept = _rms(_bandpassed(sample.displacement, mask)[:, mask]) / _rms(
        sample.displacement[:, mask]
    )
    assert kept > 0.8


@pytest.mark.parametrize(
    "params",
    [
        {"compressional": -0.1},
        {"bulk": float("nan")},
        {"bulk": 1e3},
        {"compressional_speed_m_s": 0},
    ],
)
def test_bad_amplitudes_are_refused(params):
    with pytest.raises(UserError, match=r"compressional|bulk"):
        AcquisitionParams(**params)
