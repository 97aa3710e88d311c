# DIME: training on the study's packs (when dime.model is "trained") and inversion of the test set.


rule train:
    input:
        train="results/datasets/train.zarr",
        val="results/datasets/val.zarr",
        # dated to the epoch like the config; `training` below reruns the rule when it changes
        settings=TRAINING_CONFIG,
    output:
        model="results/dime/model.pt",
        log="results/dime/logs/metrics.csv",
    params:
        out_dir=lambda wildcards, output: Path(output.model).parent,
        training=SETTINGS.digest(["dime"]),
    log:
        "results/logs/train.log",
    benchmark:
        "results/benchmarks/train.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=720,
    shell:
        # checkpoints/last.ckpt survives a killed job: rerunning the rule resumes from it; a
        # rerun for changed settings (the `training` param) starts over instead.
        "dime-pipeline --quiet train --train {input.train:q} --val {input.val:q} "
        "--out-dir {params.out_dir:q} --config {input.settings:q} --restart-on-change "
        "> {log:q} 2>&1"


rule invert_dime:
    input:
        pack="results/datasets/test.zarr",
        model=dime_model_input(),
    output:
        estimates=directory("results/inversions/dime/test.zarr"),
    params:
        model=dime_model_option(),
    log:
        "results/logs/invert_dime/test.log",
    benchmark:
        "results/benchmarks/invert_dime/test.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "dime-pipeline invert {input.pack:q} --method dime {params.model:q} "
        "--out {output.estimates:q} > {log:q} 2>&1"
