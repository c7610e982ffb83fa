# Stage 1: datasets. The only rule that downloads; it tries local mirrors first.


rule prepare_dataset:
    output:
        prepared("{dataset}"),
    log:
        "logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/job_times/prepare_dataset/{dataset}.tsv"
    wildcard_constraints:
        dataset="(?!imagenet$)[a-z0-9_]+",
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["prepare_dataset"],
    params:
        options=lambda wildcards: canonical(config["datasets"][wildcards.dataset]),
    script:
        "../workflow_scripts/prepare_dataset.py"


# ImageNet is never downloaded: the user's ImageFolder is decoded into seeded subsets.
# Not a local rule: decoding 200K JPEGs with worker processes belongs on a compute
# node, not a cluster's login node.
use rule prepare_dataset as prepare_imagenet with:
    output:
        prepared("imagenet"),
    log:
        "logs/prepare_dataset/imagenet.log",
    benchmark:
        "results/job_times/prepare_dataset/imagenet.tsv"
    localrule: False
    threads: max(1, config["datasets"].get("imagenet", {}).get("workers", 8))
    params:
        # The decoding workers do not change the images: not a param.
        options=canonical(
            {
                k: v
                for k, v in config["datasets"].get("imagenet", {}).items()
                if k != "workers"
            }
        ),
