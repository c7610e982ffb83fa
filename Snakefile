# Stealing self-supervised encoders through their API, and defending them.
# Reproduces Dziedzic et al., ICML 2022. The default target builds paper_figures/.


# config.yaml is the default; a config given with --configfile replaces it whole
# (merging two victim or budget lists would run what neither file asks for).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"


wildcard_constraints:
    victim=wildcard_pattern(VICTIMS),
    dataset="[a-z0-9_]+",
    approach=wildcard_pattern(APPROACHES),
    view_seed=r"\d+",
    loss=wildcard_pattern(LOSSES),
    query_set="[A-Za-z0-9_]+",
    downstream="[A-Za-z0-9_]+",
    budget=r"\d+",
    seed=r"\d+",
    # Any name: sslsteal.targets.check_wildcards says what is wrong with a bad one.
    defense=r"[a-z_][a-z0-9_]*?[0-9.e+-]*",
    answers=r"answers|views_seed\d+",
    kind=wildcard_pattern(DEFENSE_KINDS),
    suspect=wildcard_pattern(VICTIMS),


include: "rules/data.smk"
include: "rules/victim.smk"
include: "rules/dump.smk"
include: "rules/extract.smk"
include: "rules/baselines.smk"
include: "rules/probe.smk"
include: "rules/paper_figures.smk"
include: "rules/defense.smk"
include: "rules/dataset_inference.smk"
include: "rules/paper_comparison.smk"


rule paper_figures:
    default_target: True
    input:
        targets.paper_figure_outputs(config),
