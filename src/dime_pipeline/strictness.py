"""What every typed settings model of the package shares (the study config, ``config``, and
DIME's training settings, ``dime.settings``), in a module of its own so that both build on it
without importing each other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict

# Every typed settings model of the package (study config, training config): unknown keys, NaN
# and ±inf are errors, values are frozen.
STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

# What Lightning 2.6's Trainer accepts: its accelerator registry plus "auto" and "gpu", and
# lightning.fabric's _PRECISION_INPUT (ints 64/32/16 are taken as these strings). Enumerations,
# so a typo or a hostile string is refused when a config is read; the study config's
# dime.training and `dime-pipeline train --config` share them (one model: dime.settings).
Accelerator = Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu"]
Precision = Literal[
    "64-true",
    "64",
    "32-true",
    "32",
    "16-mixed",
    "16",
    "bf16-mixed",
    "bf16",
    "16-true",
    "bf16-true",
    "transformer-engine",
    "transformer-engine-float16",
]
