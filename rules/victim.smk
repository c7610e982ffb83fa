# Stage 2: the victim, an SSL encoder trained on its dataset.


rule train_victim:
    input:
        dataset=victim_dataset,
    output:
        encoder="results/victims/{victim}/encoder.pt",
        train_log="results/victims/{victim}/train_log.tsv",
    log:
        "logs/train_victim/{victim}.log",
    benchmark:
        "results/benchmarks/train_victim/{victim}.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: config["threads"]["train_victim"]
    params:
        victim=lambda wildcards: canonical(config["victims"][wildcards.victim]),
        seed=config["seed"],
    script:
        "../workflow_scripts/train_victim.py"
