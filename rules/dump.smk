# Stage 3: the API's answers, computed once per (victim, query set). Extraction reads
# only these files, never the victim model: the black-box threat model, enforced by
# the DAG.


rule dump_victim:
    input:
        checked,
        encoder="results/victims/{victim}/encoder.pt",
        dataset=query_dataset,
    output:
        dump="results/dumps/{victim}/{query_set}/answers.h5",
    log:
        "logs/dump_victim/{victim}/{query_set}/answers.log",
    benchmark:
        "results/job_times/dump_victim/{victim}/{query_set}/answers.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: THREADS["inference"]
    resources:
        **RESOURCES["dump_victim"],
        gpu=ENCODER_GPUS,
    params:
        query_set=lambda wildcards: canonical(config["query_sets"][wildcards.query_set]),
        precision=PRECISION,
        victim_hash=victim_hash,
    script:
        "../workflow_scripts/dump_victim.py"


# The queries of the attackers that send augmented views (head recreation, Cont-Steal):
# the views of each image, each view one API call, answered once per view seed.
use rule dump_victim as dump_victim_views with:
    output:
        dump="results/dumps/{victim}/{query_set}/views_seed{view_seed}.h5",
    log:
        "logs/dump_victim/{victim}/{query_set}/views_seed{view_seed}.log",
    benchmark:
        "results/job_times/dump_victim/{victim}/{query_set}/views_seed{view_seed}.tsv"
    # `use rule ... with` keeps dump_victim's other params; this adds the views.
    params:
        views=lambda wildcards: canonical(
            {
                "n_views": EXTRACTION["views"]["n_views"],
                "view_seed": int(wildcards.view_seed),
                "augmentation": EXTRACTION["views"].get("augmentation", {}),
            }
        ),
