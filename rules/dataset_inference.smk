# Dataset inference (docs/defenses.md, "Dataset inference"): the victim's owner fits a
# density model on the victim's representations of part of its training data, then tests
# whether a suspect's representations of other training images score higher than its
# representations of unseen test images. The table reads the suspects (the victim, its
# stolen copies, copies stolen from defended answers) beside the null of encoders that
# never saw the victim's answers.


rule fit_dataset_inference:
    input:
        checked,
        encoder="results/victims/{victim}/encoder.pt",
        dataset=dataset_inference_dataset,
    output:
        "results/dataset_inference/{victim}/density.json",
    log:
        "logs/dataset_inference/{victim}/fit.log",
    benchmark:
        "results/job_times/dataset_inference/{victim}/fit.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: THREADS["inference"]
    resources:
        **RESOURCES["probe"],
        gpu=ENCODER_GPUS,
    params:
        options=lambda wildcards: canonical(
            cfg.dataset_inference_options(config, wildcards.victim)
        ),
        victim_hash=victim_hash,
        precision=PRECISION,
    script:
        "../workflow_scripts/fit_dataset_inference.py"


rule verify_dataset_inference_victim:
    input:
        checked,
        density="results/dataset_inference/{victim}/density.json",
        victim="results/victims/{victim}/encoder.pt",
        suspect="results/victims/{suspect}/encoder.pt",
        dataset=dataset_inference_dataset,
    output:
        "results/dataset_inference/{victim}/victim/{suspect}.json",
    log:
        "logs/dataset_inference/{victim}/victim/{suspect}.log",
    benchmark:
        "results/job_times/dataset_inference/{victim}/victim/{suspect}.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: THREADS["inference"]
    resources:
        **RESOURCES["probe"],
        gpu=ENCODER_GPUS,
    params:
        options=lambda wildcards: canonical(
            cfg.dataset_inference_options(config, wildcards.victim)
        ),
        victim_hash=victim_hash,
        suspect_hash=suspect_hash,
        suspect_kind="victim",
        precision=PRECISION,
    script:
        "../workflow_scripts/verify_dataset_inference.py"


use rule verify_dataset_inference_victim as verify_dataset_inference_stolen with:
    input:
        checked,
        density="results/dataset_inference/{victim}/density.json",
        victim="results/victims/{victim}/encoder.pt",
        suspect="results/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}/encoder.pt",
        dataset=dataset_inference_dataset,
    output:
        "results/dataset_inference/{victim}/stolen/{approach}/{loss}/{query_set}/{budget}/seed{seed}.json",
    log:
        "logs/dataset_inference/{victim}/stolen/{approach}/{loss}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/job_times/dataset_inference/{victim}/stolen/{approach}/{loss}/{query_set}/{budget}/seed{seed}.tsv"
    params:
        suspect_hash=victim_hash,
        suspect_kind="stolen",


use rule verify_dataset_inference_victim as verify_dataset_inference_defended with:
    input:
        checked,
        density="results/dataset_inference/{victim}/density.json",
        victim="results/victims/{victim}/encoder.pt",
        suspect="results/defended/{defense}/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}/encoder.pt",
        dataset=dataset_inference_dataset,
    output:
        "results/dataset_inference/{victim}/defended/{defense}/stolen/{approach}/{loss}/{query_set}/{budget}/seed{seed}.json",
    log:
        "logs/dataset_inference/{victim}/defended/{defense}/stolen/{approach}/{loss}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/job_times/dataset_inference/{victim}/defended/{defense}/stolen/{approach}/{loss}/{query_set}/{budget}/seed{seed}.tsv"
    params:
        suspect_hash=victim_hash,
        suspect_kind="defended_stolen",


# The null: encoders that never saw the victim's answers.
use rule verify_dataset_inference_victim as verify_dataset_inference_independent with:
    input:
        checked,
        density="results/dataset_inference/{victim}/density.json",
        victim="results/victims/{victim}/encoder.pt",
        suspect="results/independent/{suspect}/encoder.pt",
        dataset=dataset_inference_dataset,
    output:
        "results/dataset_inference/{victim}/independent/{suspect}.json",
    log:
        "logs/dataset_inference/{victim}/independent/{suspect}.log",
    benchmark:
        "results/job_times/dataset_inference/{victim}/independent/{suspect}.tsv"
    params:
        suspect_hash=suspect_hash,
        suspect_kind="independent",


use rule verify_dataset_inference_victim as verify_dataset_inference_own_ssl with:
    input:
        checked,
        density="results/dataset_inference/{victim}/density.json",
        victim="results/victims/{victim}/encoder.pt",
        suspect="results/own_ssl/{suspect}/{query_set}/{budget}/seed{seed}/encoder.pt",
        dataset=dataset_inference_dataset,
    output:
        "results/dataset_inference/{victim}/own_ssl/{suspect}/{query_set}/{budget}/seed{seed}.json",
    log:
        "logs/dataset_inference/{victim}/own_ssl/{suspect}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/job_times/dataset_inference/{victim}/own_ssl/{suspect}/{query_set}/{budget}/seed{seed}.tsv"
    params:
        suspect_hash=suspect_hash,
        suspect_kind="own_ssl",


use rule verify_dataset_inference_victim as verify_dataset_inference_random_init with:
    input:
        checked,
        density="results/dataset_inference/{victim}/density.json",
        victim="results/victims/{victim}/encoder.pt",
        dataset=dataset_inference_dataset,
    output:
        "results/dataset_inference/{victim}/random_init/seed{seed}.json",
    log:
        "logs/dataset_inference/{victim}/random_init/seed{seed}.log",
    benchmark:
        "results/job_times/dataset_inference/{victim}/random_init/seed{seed}.tsv"
    params:
        suspect_hash=None,
        suspect_kind="random_init",


rule dataset_inference_table:
    input:
        checked,
        suspects=lambda wildcards: targets.dataset_inference_suspects(
            config, wildcards.victim
        ),
        null=lambda wildcards: targets.dataset_inference_null(config, wildcards.victim),
    output:
        csv="paper_figures/{victim}/dataset_inference.csv",
        markdown="paper_figures/{victim}/dataset_inference.md",
        figure=report(
            "paper_figures/{victim}/dataset_inference.png",
            caption="../report/dataset_inference.rst",
            category="Defenses",
        ),
    log:
        "logs/dataset_inference_table/{victim}.log",
    benchmark:
        "results/job_times/dataset_inference_table/{victim}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        style=canonical(config["paper_figures"].get("figure", {})),
    script:
        "../workflow_scripts/dataset_inference_table.py"
