# Harmonic FEM solves (MPI) and the summary of the resulting sample stores.


rule simulate:
    input:
        phantom="meshes/{family}/{index}",
    output:
        store=directory("results/samples/{family}/{index}.zarr"),
    params:
        jit_cache=SETTINGS.solver.jit_cache,
        solver=f"--solver {SETTINGS.solver.kind} --max-iterations {SETTINGS.solver.max_iterations}",
    conda:
        "../../environment.yml"
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
        "dime-pipeline simulate {input.phantom} --out {output.store} "
        "--jit-cache {params.jit_cache} {params.solver} > {log} 2>&1"


rule summarize:
    input:
        stores=all_stores(),
    output:
        summary="results/samples/summary.json",
    conda:
        "../../environment.yml"
    log:
        "results/logs/summarize.log",
    benchmark:
        "results/benchmarks/summarize.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "dime-pipeline summarize {input.stores} --out {output.summary} > {log} 2>&1"
