# Baseline inversions (MMDI, DI) of the test set: one estimates store per method.



rule invert_baseline:
    input:
        pack="results/datasets/test.zarr",
    output:
        estimates=directory("results/inversions/{method}/test.zarr"),
    wildcard_constraints:
        method="|".join(BASELINE_METHODS),
    log:
        "results/logs/invert_baseline/{method}/test.log",
    benchmark:
        "results/benchmarks/invert_baseline/{method}/test.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "dime-pipeline invert {input.pack:q} --method {wildcards.method:q} "
        "--out {output.estimates:q} > {log:q} 2>&1"
