# MRE acquisition (one store per sample and noise level) and the packed train/val/test datasets.


if SHARD_SIZE == 1:  # one job per stage and sample; else workflow/rules/shards.smk

    rule acquire:
        input:
            store="results/samples/{family}/{index}.zarr",
        output:
            store=directory("results/acquired/{family}/{index}/snr-{snr}.zarr"),
        params:
            seed=acquire_seed_of,
            options=acquire_arguments,
        log:
            "results/logs/acquire/{family}/{index}/snr-{snr}.log",
        benchmark:
            "results/benchmarks/acquire/{family}/{index}/snr-{snr}.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=5,
        shell:
            "dime-pipeline acquire {input.store:q} --out {output.store:q} --seed {params.seed:q} "
            "{params.options:q} > {log:q} 2>&1"


rule pack:
    input:
        stores=all_acquired(),
        listing=store_list("acquired"),
    output:
        train=directory("results/datasets/train.zarr"),
        val=directory("results/datasets/val.zarr"),
        test=directory("results/datasets/test.zarr"),
    params:
        out_dir=lambda wildcards, output: Path(output.train).parent,
        fractions=pack_fractions(),
        seed=SETTINGS.datasets.split_seed,
        config_hash=SETTINGS.data_digest(),  # DIME training settings re-pack nothing
    log:
        "results/logs/pack.log",
    benchmark:
        "results/benchmarks/pack.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "dime-pipeline pack @{input.listing:q} --out-dir {params.out_dir:q} "
        "--fractions {params.fractions:q} --seed {params.seed:q} "
        "--config-hash {params.config_hash:q} > {log:q} 2>&1"
