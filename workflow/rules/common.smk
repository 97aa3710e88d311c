# Config validation and the helpers every rule file shares.
import json
import sys

from dime_pipeline.config import FAMILIES, validate_config
from dime_pipeline.errors import UserError
from dime_pipeline.seeding import sample_seed

try:
    SETTINGS = validate_config(config)
except UserError as error:
    sys.exit(f"dime-pipeline: {error}")


wildcard_constraints:
    family="|".join(FAMILIES),
    index=r"\d{4}",


def sample_ids():
    """(family, index) of every sample of the study, in a stable order."""
    return [
        (family, f"{index:04d}")
        for family, count in SETTINGS.samples.items()
        for index in range(count)
    ]


def seed_of(wildcards):
    return sample_seed(SETTINGS.seed, wildcards.family, int(wildcards.index))


def all_stores():
    return [f"results/samples/{family}/{index}.zarr" for family, index in sample_ids()]
