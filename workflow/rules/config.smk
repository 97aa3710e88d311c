# The validated config, every key spelled out (`results/config.yaml`): phantoms read it (its
# time pinned to the epoch, see pin_mtime in common.smk), the report shows it.
#
# It is rewritten by `onstart`, not by rerunning this rule. Snakemake 9 skips its rerun checks
# (params, code, input) for every job downstream of a job that must rerun, expecting the rerun
# to spread; a rule rerun on each config change would spread to every phantom, or, through an
# ancient edge, not at all and leave a changed split seed, SNR or epoch count unapplied (`pack`, `acquire`, `train` not
# rerun) until the next invocation, behind a report showing the new config. The rule only
# creates the file; the report reruns on a config change through its `config_hash` param.
# A lost file is put back before the DAG is built (restore_lost_pinned_inputs, common.smk).


rule resolved_config:
    output:
        RESOLVED_CONFIG,
    log:
        "results/logs/resolved_config.log",
    localrule: True
    run:
        write_resolved_config(output[0])


onstart:
    write_resolved_config(RESOLVED_CONFIG)


restore_lost_pinned_inputs()
