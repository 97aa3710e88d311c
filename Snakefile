# dime-pipeline: phantoms → FEM solves → sample stores → acquisition → datasets →
# DIME / MMDI / DI inversions → evaluation → results/report/index.html.
# Run `snakemake --cores N`; every rule calls the `dime-pipeline` command line.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/config.smk"
include: "workflow/rules/phantoms.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/acquire.smk"
include: "workflow/rules/invert.smk"
include: "workflow/rules/dime.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    default_target: True
    input:
        summary="results/samples/summary.json",
        datasets=expand("results/datasets/{split}.zarr", split=("train", "val", "test")),
        report="results/report/index.html",
