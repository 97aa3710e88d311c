# The validated config, every key spelled out: the input every phantom depends on.


rule resolved_config:
    output:
        "results/config.yaml",
    params:
        json=json.dumps(SETTINGS.model_dump(mode="json"), sort_keys=True),
    conda:
        "../../environment.yml"
    log:
        "results/logs/resolved_config.log",
    shell:
        "dime-pipeline config --json {params.json:q} --out {output} > {log} 2>&1"
