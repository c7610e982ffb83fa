# Stage 4: extraction. One job per (victim, method, loss, query set, budget, seed); the
# inputs are the victim's answers and the attacker's own query images, nothing else.


rule extract:
    input:
        checked,
        dump=extraction_dump,
        dataset=query_dataset,
    output:
        encoder="results/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}/encoder.pt",
        train_log="results/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}/train_log.tsv",
    log:
        "logs/extract/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/job_times/extract/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: THREADS["extraction"]
    resources:
        **RESOURCES["extract"],
        gpu=ENCODER_GPUS,
    params:
        backbone=stolen_backbone,
        loss_options=extraction_loss_options,
        approach_options=extraction_approach_options,
        query_set=lambda wildcards: canonical(config["query_sets"][wildcards.query_set]),
        steps=EXTRACTION["steps"],
        weight_decay=EXTRACTION.get("weight_decay", 0.0),
        precision=PRECISION,
        victim_hash=victim_hash,
    script:
        "../workflow_scripts/extract.py"
