# Stage 2: the victim, an SSL encoder trained on its dataset.


rule train_victim:
    input:
        dataset=victim_dataset,
    output:
        encoder="results/victims/{victim}/encoder.pt",
        train_log="results/victims/{victim}/train_log.tsv",
    params:
        victim=lambda wildcards: config["victims"][wildcards.victim],
        seed=config["seed"],
    threads: config["threads"]["train_victim"]
    log:
        "logs/train_victim/{victim}.log",
    benchmark:
        "results/benchmarks/train_victim/{victim}.tsv"
    script:
        "../workflow_scripts/train_victim.py"
