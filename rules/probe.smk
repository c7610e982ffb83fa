# Stage 5: the linear probe, one protocol for every encoder: the victim, each stolen
# copy, and the encoders that give their numbers a meaning (random init of the victim's
# architecture, raw pixels, the attacker's own SSL, an independently trained twin).
# Every probe is one seed: it draws the probe's labelled subset and the folds that choose
# its L2 penalty (and, for random init, the weights), so probes with the same seed are
# paired.


rule probe_stolen:
    input:
        checked,
        encoder="results/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}/encoder.pt",
        # Fidelity compares the stolen representation with the victim's on the probe's
        # held-out images (evaluation, not the attack: the attacker never sees these).
        victim="results/victims/{victim}/encoder.pt",
        dataset=downstream_dataset,
    output:
        "results/probes/{downstream}/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}.json",
    log:
        "logs/probe/{downstream}/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/job_times/probe/{downstream}/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: THREADS["inference"]
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
        checked,
        encoder="results/victims/{victim}/encoder.pt",
        dataset=downstream_dataset,
    output:
        "results/probes/{downstream}/victim/{victim}/seed{seed}.json",
    log:
        "logs/probe/{downstream}/victim/{victim}/seed{seed}.log",
    benchmark:
        "results/job_times/probe/{downstream}/victim/{victim}/seed{seed}.tsv"
    params:
        **PROBE_PARAMS,
        encoder_kind="victim",
        victim_hash=victim_hash,


# The floor: the victim's architecture with seeded random weights, never trained; its
# fidelity to the victim is the reference for 'not stolen'.
use rule probe_stolen as probe_random_init with:
    input:
        checked,
        victim="results/victims/{victim}/encoder.pt",
        dataset=downstream_dataset,
    output:
        "results/probes/{downstream}/random_init/{victim}/seed{seed}.json",
    log:
        "logs/probe/{downstream}/random_init/{victim}/seed{seed}.log",
    benchmark:
        "results/job_times/probe/{downstream}/random_init/{victim}/seed{seed}.tsv"
    params:
        **PROBE_PARAMS,
        encoder_kind="random_init",
        victim_hash=victim_hash,
        backbone=lambda wildcards: canonical(
            config["victims"][wildcards.victim]["backbone"]
        ),
        image_size=victim_image_size,


use rule probe_stolen as probe_raw_pixels with:
    input:
        checked,
        dataset=downstream_dataset,
    output:
        "results/probes/{downstream}/raw_pixels/seed{seed}.json",
    log:
        "logs/probe/{downstream}/raw_pixels/seed{seed}.log",
    benchmark:
        "results/job_times/probe/{downstream}/raw_pixels/seed{seed}.tsv"
    params:
        **PROBE_PARAMS,
        encoder_kind="raw_pixels",
        victim_hash=None,


# The attacker's own SSL on its query images, no API (baselines.own_ssl).
use rule probe_stolen as probe_own_ssl with:
    input:
        checked,
        encoder="results/own_ssl/{victim}/{query_set}/{budget}/seed{seed}/encoder.pt",
        victim="results/victims/{victim}/encoder.pt",
        dataset=downstream_dataset,
    output:
        "results/probes/{downstream}/own_ssl/{victim}/{query_set}/{budget}/seed{seed}.json",
    log:
        "logs/probe/{downstream}/own_ssl/{victim}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/job_times/probe/{downstream}/own_ssl/{victim}/{query_set}/{budget}/seed{seed}.tsv"
    params:
        **PROBE_PARAMS,
        encoder_kind="own_ssl",
        victim_hash=victim_hash,


# The victim's recipe trained from another seed (baselines.independent): the fidelity
# of an encoder that learned the same task without stealing.
use rule probe_stolen as probe_independent with:
    input:
        checked,
        encoder="results/independent/{victim}/encoder.pt",
        victim="results/victims/{victim}/encoder.pt",
        dataset=downstream_dataset,
    output:
        "results/probes/{downstream}/independent/{victim}/seed{seed}.json",
    log:
        "logs/probe/{downstream}/independent/{victim}/seed{seed}.log",
    benchmark:
        "results/job_times/probe/{downstream}/independent/{victim}/seed{seed}.tsv"
    params:
        **PROBE_PARAMS,
        encoder_kind="independent",
        victim_hash=victim_hash,
