"""Random streams: one numpy Generator per sample, seeded from (config seed, family, index)."""

from __future__ import annotations

import zlib

import numpy as np


def sample_seed(root_seed: int, family: str, index: int) -> int:
    """The seed of sample ``index`` of ``family``: stable across Python runs and platforms."""
    family_key = zlib.crc32(family.encode())
    state = np.random.SeedSequence([root_seed, family_key, index]).generate_state(1, np.uint32)
    return int(state[0])


def generator(seed: int) -> np.random.Generator:
    """The single random stream of one sample."""
    return np.random.Generator(np.random.PCG64(seed))
