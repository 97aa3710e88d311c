# Evaluation of every method's test-set estimates (metrics JSON, figures) and the HTML report.

TRAINING_FIGURE = "results/report/training.png"


rule evaluate:
    input:
        truth="results/datasets/test.zarr",
        estimates=expand("results/inversions/{method}/test.zarr", method=EVALUATED_METHODS),
    output:
        summary="results/metrics/summary.json",
        groups="results/metrics/groups.json",
        samples="results/metrics/samples.json",
        sweeps="results/metrics/sweeps.json",
        provenance="results/metrics/provenance.json",
        manifest="results/figures/manifest.json",
        maps=figure_folder(
            "maps", ["{family}/snr-{snr}.png"], "Maps", {"family": "{family}", "SNR": "{snr}"}
        ),
        scatter=figure_folder("scatter", ["{family}.png"], "Scatter", {"family": "{family}"}),
        bland_altman=figure_folder(
            "bland_altman", ["{family}.png"], "Bland–Altman", {"family": "{family}"}
        ),
        noise=figure_folder("noise", ["{family}.png"], "Noise", {"family": "{family}"}),
        sweep_figures=figure_folder(
            "sweeps",
            ["{family}/{variable}.png"],
            "Frequency and voxel size",
            {"family": "{family}", "variable": "{variable}"},
        ),
        confidence=figure_folder(
            "confidence", ["{method}.png"], "Confidence", {"method": "{method}"}
        ),
    params:
        metrics_dir=lambda wildcards, output: Path(output.summary).parent,
        figures_dir=lambda wildcards, output: Path(output.manifest).parent,
    log:
        "results/logs/evaluate.log",
    benchmark:
        "results/benchmarks/evaluate.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "dime-pipeline evaluate --truth {input.truth:q} --estimates {input.estimates:q} "
        "--out-dir {params.metrics_dir:q} --figures-dir {params.figures_dir:q} > {log:q} 2>&1"


rule wavelength_sweep:
    # every method on exact scattering scenes at 10, 30 and 80 px per wavelength (the command's
    # quick default; docs/evaluation.md gives the full sweep)
    input:
        model=dime_model_input(),
    output:
        document="results/metrics/wavelength.json",
        figure=report(
            "results/figures/wavelength.png",
            caption="../report/wavelength.rst",
            category="Evaluation",
            subcategory="Wavelength sweep",
        ),
    params:
        methods=EVALUATED_METHODS,
        model=dime_model_option(),
    log:
        "results/logs/wavelength_sweep.log",
    benchmark:
        "results/benchmarks/wavelength_sweep.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "dime-pipeline --quiet wavelength-sweep --methods {params.methods:q} {params.model:q} "
        "--out {output.document:q} --figure {output.figure:q} > {log:q} 2>&1"


rule report:
    input:
        metrics=[
            rules.evaluate.output.summary,
            rules.evaluate.output.groups,
            rules.evaluate.output.samples,
            rules.evaluate.output.sweeps,
            rules.evaluate.output.provenance,
        ],
        manifest=rules.evaluate.output.manifest,
        wavelength=rules.wavelength_sweep.output,
        figures=[f"results/figures/{kind}" for kind in FIGURE_KINDS],
        config=RESOLVED_CONFIG,
        training_log=training_log_input(),
        previews=preview_images(),
    output:
        html=report(
            "results/report/index.html", caption="../report/results.rst", category="Report"
        ),
        # The training curves as their own file for `snakemake --report`, when there is a log
        # to draw them from (the shipped model's, or the one of this study's training).
        training_figure=(
            [report(TRAINING_FIGURE, caption="../report/training.rst", category="Report")]
            if training_log_input()
            else []
        ),
    params:
        metrics_dir=lambda wildcards, input: Path(input.metrics[0]).parent,
        figures_dir=lambda wildcards, input: Path(input.manifest).parent,
        training=lambda wildcards, input, output: (
            ["--training-log", input.training_log, "--training-figure", output.training_figure]
            if input.training_log
            else []
        ),
        config_hash=SETTINGS.digest(),  # the config it shows is rewritten by `onstart`
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "dime-pipeline report --metrics-dir {params.metrics_dir:q} "
        "--figures-dir {params.figures_dir:q} --config {input.config:q} {params.training:q} "
        "--previews {input.previews:q} --wavelength-sweep {input.wavelength:q} "
        "--out {output.html:q} > {log:q} 2>&1"
