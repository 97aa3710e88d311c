# The validated config, every key spelled out (`results/config.yaml`): phantoms and shards read
# it (its time pinned to the epoch, see pin_mtime in common.smk), the report shows it. Its
# `dime.training` section goes to `results/training.yaml` too, for the rule `train`.
#
# No job writes it. It is created when the Snakefile is read, if missing (a dry run too: it only
# depends on the config), and rewritten by `onstart`, before any job starts, when the config
# changed. A rule rerun on each config change would not do: Snakemake 9 skips the rerun checks
# (params, code, input) of every job downstream of a job that must rerun, expecting the rerun
# to spread, so it would rerun every phantom. The report reruns on a config change through its
# `config_hash` param. The store lists (`results/lists/`) are written the same way.

if not (Path(RESOLVED_CONFIG).exists() and Path(TRAINING_CONFIG).exists()):
    write_resolved_config(RESOLVED_CONFIG)
write_store_lists()


onstart:
    write_resolved_config(RESOLVED_CONFIG)


restore_lost_pinned_inputs()
