# Harmonic FEM solves (MPI) and the summary of the resulting sample stores.


rule warm_jit_cache:
    input:
        # no params: a rerun of this rule reruns every solve. It warms the study's `dim` and
        # `solver.jit_cache`; after a change of either, the solves compile what it lacks.
        config=RESOLVED_CONFIG,
    output:
        record=WARM_UP_RECORD,
    log:
        "results/logs/warm_jit_cache.log",
    benchmark:
        "results/benchmarks/warm_jit_cache.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        # Every solve uses the same forms: compile them once, before hundreds of solves start
        # (the iterative solver's forms include the direct solver's).
        "OMP_NUM_THREADS=1 dime-pipeline warm-up --config {input.config:q} --solver iterative "
        "--out {output.record:q} > {log:q} 2>&1"


if SHARD_SIZE == 1:  # one job per stage and sample; else workflow/rules/shards.smk

    rule simulate:
        input:
            phantom="meshes/{family}/{index}",
            # a plain edge: a rerun of the warm-up reruns the solves; a lost record is put back
            # dated to the epoch (restore_lost_pinned_inputs), which reruns none.
            warm_up=WARM_UP_RECORD,
        output:
            store=directory("results/samples/{family}/{index}.zarr"),
        params:
            jit_cache=SETTINGS.solver.jit_cache,
            solver=["--solver", SETTINGS.solver.kind, "--max-iterations", str(SETTINGS.solver.max_iterations)],
        log:
            "results/logs/simulate/{family}/{index}.log",
        benchmark:
            "results/benchmarks/simulate/{family}/{index}.tsv"
        threads: SETTINGS.solver.ranks
        resources:
            mpi="mpiexec",
            tasks=SETTINGS.solver.ranks,
            mem_mb=4000,
            runtime=30,
        shell:
            "OMP_NUM_THREADS=1 {resources.mpi} -n {resources.tasks} "
            "dime-pipeline simulate {input.phantom:q} --out {output.store:q} "
            "--jit-cache {params.jit_cache:q} {params.solver:q} > {log:q} 2>&1"


rule summarize:
    input:
        stores=all_stores(),
        listing=store_list("samples"),
    output:
        summary="results/samples/summary.json",
    log:
        "results/logs/summarize.log",
    benchmark:
        "results/benchmarks/summarize.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "dime-pipeline summarize @{input.listing:q} --out {output.summary:q} > {log:q} 2>&1"
