# Baselines that give a stolen copy's numbers their meaning: the attacker's own SSL on
# its query images (does the API beat it?) and the victim's recipe from another seed
# (what fidelity does an encoder have that was never stolen?).


rule train_own_ssl:
    input:
        checked,
        # Only the metadata of the answers (the API's input shape and the queries'
        # checksum): this attacker never uses the answers themselves.
        dump="results/dumps/{victim}/{query_set}/answers.h5",
        dataset=query_dataset,
    output:
        encoder="results/own_ssl/{victim}/{query_set}/{budget}/seed{seed}/encoder.pt",
        train_log="results/own_ssl/{victim}/{query_set}/{budget}/seed{seed}/train_log.tsv",
    log:
        "logs/train_own_ssl/{victim}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/job_times/train_own_ssl/{victim}/{query_set}/{budget}/seed{seed}.tsv"
    wildcard_constraints:
        victim=TRAINED_VICTIMS_PATTERN,
    conda:
        "../envs/sslsteal.yaml"
    threads: THREADS["training"]
    resources:
        **RESOURCES["extract"],
        gpu=ENCODER_GPUS,
    params:
        victim=lambda wildcards: canonical(config["victims"][wildcards.victim]),
        query_set=lambda wildcards: canonical(config["query_sets"][wildcards.query_set]),
        steps=EXTRACTION["steps"],
        batch_size=lambda wildcards: cfg.own_ssl_batch_size(
            config, wildcards.victim, wildcards.query_set, int(wildcards.budget)
        ),
        precision=PRECISION,
        victim_hash=victim_hash,
    script:
        "../workflow_scripts/train_own_ssl.py"


# The same job as the victim's, from another seed.
use rule train_victim as train_independent with:
    output:
        encoder="results/independent/{victim}/encoder.pt",
        train_log="results/independent/{victim}/train_log.tsv",
    log:
        "logs/train_independent/{victim}.log",
    benchmark:
        "results/job_times/train_independent/{victim}.tsv"
    params:
        victim=lambda wildcards: canonical(config["victims"][wildcards.victim]),
        seed=config.get("baselines", {}).get("independent", {}).get("seed", 1),
        precision=PRECISION,
