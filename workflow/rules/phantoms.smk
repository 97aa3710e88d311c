# Phantom generation: gmsh meshes with region and boundary tags, one folder per sample.


if SHARD_SIZE == 1:  # one job per stage and sample; else workflow/rules/shards.smk

    rule phantom:
        input:
            # dated to the epoch (pin_mtime): a change elsewhere in the config (acquisition,
            # training) must not regenerate every phantom; `phantom_keys` reruns them when theirs do.
            config=RESOLVED_CONFIG,
        output:
            phantom=directory("meshes/{family}/{index}"),
        params:
            seed=seed_of,
            phantom_keys=SETTINGS.digest(PHANTOM_KEYS),
        log:
            "results/logs/phantom/{family}/{index}.log",
        benchmark:
            "results/benchmarks/phantom/{family}/{index}.tsv"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        shell:
            "dime-pipeline phantom {wildcards.family:q} --seed {params.seed:q} --no-preview "
            "--config {input.config:q} --out {output.phantom:q} > {log:q} 2>&1"


rule preview:
    # only the phantoms the report shows are drawn (rule `preview`, not every phantom job): at
    # about a second of matplotlib each, previews would cost a 10 000-phantom study hours
    input:
        phantom=lambda wc: str(SamplePaths(wc.family, PREVIEW_INDEX).phantom),
    output:
        png="results/previews/{family}.png",
    log:
        "results/logs/preview/{family}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "dime-pipeline preview {input.phantom:q} --out {output.png:q} > {log:q} 2>&1"
