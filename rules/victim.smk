# Stage 2: the victims. An SSL encoder trained on its dataset (SimCLR, SimSiam or
# Barlow Twins), or an external checkpoint imported as it is.


rule train_victim:
    input:
        checked,
        dataset=victim_dataset,
    output:
        encoder="results/victims/{victim}/encoder.pt",
        train_log="results/victims/{victim}/train_log.tsv",
    log:
        "logs/train_victim/{victim}.log",
    benchmark:
        "results/job_times/train_victim/{victim}.tsv"
    wildcard_constraints:
        victim=TRAINED_VICTIMS_PATTERN,
    conda:
        "../envs/sslsteal.yaml"
    threads: THREADS["training"]
    resources:
        **RESOURCES["train_victim"],
        gpu=ENCODER_GPUS,
    params:
        victim=lambda wildcards: canonical(config["victims"][wildcards.victim]),
        seed=config["seed"],
        precision=PRECISION,
    script:
        "../workflow_scripts/train_victim.py"


rule import_victim:
    input:
        checked,
        checkpoint=lambda wildcards: config["victims"][wildcards.victim]["external"][
            "path"
        ],
    output:
        encoder="results/victims/{victim}/encoder.pt",
    log:
        "logs/import_victim/{victim}.log",
    benchmark:
        "results/job_times/import_victim/{victim}.tsv"
    wildcard_constraints:
        victim=EXTERNAL_VICTIMS_PATTERN,
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["import_victim"],
    params:
        victim=lambda wildcards: canonical(config["victims"][wildcards.victim]),
    script:
        "../workflow_scripts/import_victim.py"
