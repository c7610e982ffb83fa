# Stage 5: the linear probe, one protocol for every encoder: the victim, each stolen
# copy, a random-init encoder of the victim's architecture (the floor), and raw pixels.


rule probe_stolen:
    input:
        encoder="results/stolen/{victim}/{method}/{loss}/{query_set}/{budget}/encoder.pt",
        # Fidelity compares the stolen representation with the victim's on the probe's
        # held-out images (evaluation, not the attack: the attacker never sees these).
        victim="results/victims/{victim}/encoder.pt",
        dataset=downstream_dataset,
    output:
        "results/probes/{downstream}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}.json",
    log:
        "logs/probe/{downstream}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}.log",
    benchmark:
        "results/benchmarks/probe/{downstream}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: config["threads"]["probe"]
    resources:
        **RESOURCES["probe"],
        gpu=ENCODER_GPUS,
    params:
        **PROBE_PARAMS,
        encoder_kind="stolen",
        victim_hash=victim_hash,
    script:
        "../workflow_scripts/probe.py"


use rule probe_stolen as probe_victim with:
    input:
        encoder="results/victims/{victim}/encoder.pt",
        dataset=downstream_dataset,
    output:
        "results/probes/{downstream}/victim/{victim}.json",
    log:
        "logs/probe/{downstream}/victim/{victim}.log",
    benchmark:
        "results/benchmarks/probe/{downstream}/victim/{victim}.tsv"
    params:
        **PROBE_PARAMS,
        encoder_kind="victim",
        victim_hash=victim_hash,


# The floor: the victim's architecture with seeded random weights, never trained.
use rule probe_stolen as probe_random_init with:
    input:
        dataset=downstream_dataset,
    output:
        "results/probes/{downstream}/random_init/{victim}.json",
    log:
        "logs/probe/{downstream}/random_init/{victim}.log",
    benchmark:
        "results/benchmarks/probe/{downstream}/random_init/{victim}.tsv"
    params:
        **PROBE_PARAMS,
        encoder_kind="random_init",
        victim_hash=None,
        backbone=lambda wildcards: canonical(
            config["victims"][wildcards.victim]["backbone"]
        ),
        image_size=victim_image_size,


use rule probe_stolen as probe_raw_pixels with:
    input:
        dataset=downstream_dataset,
    output:
        "results/probes/{downstream}/raw_pixels.json",
    log:
        "logs/probe/{downstream}/raw_pixels.log",
    benchmark:
        "results/benchmarks/probe/{downstream}/raw_pixels.tsv"
    params:
        **PROBE_PARAMS,
        encoder_kind="raw_pixels",
        victim_hash=None,
