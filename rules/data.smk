# Stage 1: datasets. The only rule that downloads; it tries local mirrors first.


rule prepare_dataset:
    output:
        prepared("{dataset}"),
    log:
        "logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/{dataset}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["prepare_dataset"],
    params:
        options=lambda wildcards: canonical(config["datasets"][wildcards.dataset]),
    script:
        "../workflow_scripts/prepare_dataset.py"
