# Stage 5: the linear probe, one protocol for every encoder: the victim, each stolen
# copy, a random-init encoder of the victim's architecture (the floor), and raw pixels.


def downstream_inputs(wildcards):
    return prepared(config["probe"]["downstream"][wildcards.downstream]["dataset"])


PROBE_PARAMS = dict(
    downstream=lambda wildcards: config["probe"]["downstream"][wildcards.downstream],
    recipe={k: v for k, v in config["probe"].items() if k != "downstream"},
    seed=config["seed"],
)


rule probe_stolen:
    input:
        encoder="results/stolen/{victim}/{method}/{loss}/{query_set}/{budget}/encoder.pt",
        dataset=downstream_inputs,
    output:
        "results/probes/{downstream}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}.json",
    params:
        **PROBE_PARAMS,
        encoder_kind="stolen",
    threads: config["threads"]["probe"]
    log:
        "logs/probe/{downstream}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}.log",
    benchmark:
        "results/benchmarks/probe/{downstream}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}.tsv"
    script:
        "../workflow_scripts/probe.py"


use rule probe_stolen as probe_victim with:
    input:
        encoder="results/victims/{victim}/encoder.pt",
        dataset=downstream_inputs,
    output:
        "results/probes/{downstream}/victim/{victim}.json",
    params:
        **PROBE_PARAMS,
        encoder_kind="victim",
    log:
        "logs/probe/{downstream}/victim/{victim}.log",
    benchmark:
        "results/benchmarks/probe/{downstream}/victim/{victim}.tsv"


# The floor: the victim's architecture with seeded random weights, never trained.
use rule probe_stolen as probe_random_init with:
    input:
        dataset=downstream_inputs,
    output:
        "results/probes/{downstream}/random_init/{victim}.json",
    params:
        **PROBE_PARAMS,
        encoder_kind="random_init",
        backbone=lambda wildcards: config["victims"][wildcards.victim]["backbone"],
    log:
        "logs/probe/{downstream}/random_init/{victim}.log",
    benchmark:
        "results/benchmarks/probe/{downstream}/random_init/{victim}.tsv"


use rule probe_stolen as probe_raw_pixels with:
    input:
        dataset=downstream_inputs,
    output:
        "results/probes/{downstream}/raw_pixels.json",
    params:
        **PROBE_PARAMS,
        encoder_kind="raw_pixels",
    log:
        "logs/probe/{downstream}/raw_pixels.log",
    benchmark:
        "results/benchmarks/probe/{downstream}/raw_pixels.tsv"
