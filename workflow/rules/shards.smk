# Shards (`workflow.shard_size` > 1): one job makes a batch of samples of one family, from phantom
# to acquired stores, in one process (`dime-pipeline shard`). The files are those of the rules
# `phantom`, `simulate` and `acquire` (which run instead when the shard size is 1), so
# everything downstream is the same. Snakemake cannot give one rule a number of outputs that
# depends on a wildcard, so each shard is a rule of its own, `shard_FAMILY_NNNN`; the profile's
# `set-resources: shard:` applies to all of them (shard_resources, common.smk).


SHARD_PRIORITY = {"liver": 2, "heterogeneous": 1, "homogeneous": 0}


def shard_outputs(family, indices):
    samples = [SamplePaths(family, index) for index in indices]
    return {
        "phantoms": [directory(str(s.phantom)) for s in samples],
        "stores": [directory(str(s.store)) for s in samples],
        "acquired": [directory(str(s.acquired(l))) for s in samples for l in snr_labels()],
    }


def shard_logs(family, indices):
    samples = [SamplePaths(family, index) for index in indices]
    logs = [str(s.log(stage)) for s in samples for stage in ("phantom", "simulate")]
    return logs + [str(s.log("acquire", label)) for s in samples for label in snr_labels()]


if SHARD_SIZE > 1:
    for _family, _shard, _indices in shard_plan():

        rule:
            name:
                f"shard_{_family}_{_shard:04d}"
            input:
                # the config is dated to the epoch (pin_mtime); `phantom_keys` reruns shards.
                # No warm-up job: a shard's first solve compiles under a lock on the cache.
                config=RESOLVED_CONFIG,
            output:
                **shard_outputs(_family, _indices),
                record=f"results/benchmarks/shard/{_family}/{_shard:04d}.json",
            params:
                family=_family,
                indices=[str(index) for index in _indices],
                jit_cache=SETTINGS.solver.jit_cache,
                phantom_keys=SETTINGS.digest(PHANTOM_KEYS),
                acquisition=SETTINGS.digest(["acquisition"]),
                solver=SETTINGS.digest(["solver"]),
            log:
                main=f"results/logs/shard/{_family}/{_shard:04d}.log",
                samples=shard_logs(_family, _indices),
            benchmark:
                f"results/benchmarks/shard/{_family}/{_shard:04d}.tsv"
            # longest first (liver meshes and solves cost most): the last shards to finish run
            # side by side instead of one alone on an idle machine
            priority: SHARD_PRIORITY.get(_family, 0)
            threads: SETTINGS.solver.ranks
            resources:
                **shard_resources(len(_indices)),
            shell:
                "OMP_NUM_THREADS=1 {resources.mpi} -n {resources.tasks} dime-pipeline shard "
                "{params.family:q} {params.indices:q} --config {input.config:q} "
                "--jit-cache {params.jit_cache:q} --record {output.record:q} > {log.main:q} 2>&1"
