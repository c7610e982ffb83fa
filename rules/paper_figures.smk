# Stage 6: the paper's outputs. Collecting, tabulating and plotting are separate rules,
# so a figure setting reruns only the figure.


rule collect_probes:
    input:
        checked,
        baselines=lambda wildcards: targets.baseline_probes(
            config, wildcards.victim, wildcards.downstream
        ),
        stolen=lambda wildcards: targets.stolen_probes(
            config, wildcards.victim, wildcards.downstream
        ),
    output:
        "results/tables/{victim}/{downstream}/probes.csv",
    log:
        "logs/collect_probes/{victim}/{downstream}.log",
    benchmark:
        "results/job_times/collect_probes/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    script:
        "../workflow_scripts/collect_probes.py"


rule stolen_accuracy_table:
    input:
        checked,
        "results/tables/{victim}/{downstream}/probes.csv",
    output:
        csv=report(
            "paper_figures/{victim}/{downstream}/stolen_accuracy.csv",
            caption="../report/stolen_accuracy.rst",
            category="Stolen accuracy",
        ),
        markdown="paper_figures/{victim}/{downstream}/stolen_accuracy.md",
    log:
        "logs/stolen_accuracy_table/{victim}/{downstream}.log",
    benchmark:
        "results/job_times/stolen_accuracy_table/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    script:
        "../workflow_scripts/stolen_accuracy_table.py"


rule accuracy_vs_queries_figure:
    input:
        checked,
        "results/tables/{victim}/{downstream}/probes.csv",
    output:
        report(
            "paper_figures/{victim}/{downstream}/accuracy_vs_queries.png",
            caption="../report/accuracy_vs_queries.rst",
            category="Stolen accuracy",
        ),
    log:
        "logs/accuracy_vs_queries_figure/{victim}/{downstream}.log",
    benchmark:
        "results/job_times/accuracy_vs_queries_figure/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        style=canonical(config["paper_figures"].get("figure", {})),
        query_set=lambda wildcards: comparison_cell(wildcards)[0],
    script:
        "../workflow_scripts/accuracy_vs_queries_figure.py"


rule approach_comparison_table:
    input:
        checked,
        "results/tables/{victim}/{downstream}/probes.csv",
    output:
        csv=report(
            "paper_figures/{victim}/{downstream}/approach_comparison.csv",
            caption="../report/approach_comparison.rst",
            category="Extraction approaches",
        ),
        markdown="paper_figures/{victim}/{downstream}/approach_comparison.md",
    log:
        "logs/approach_comparison_table/{victim}/{downstream}.log",
    benchmark:
        "results/job_times/approach_comparison_table/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        query_set=lambda wildcards: comparison_cell(wildcards)[0],
        budget=lambda wildcards: comparison_cell(wildcards)[1],
    script:
        "../workflow_scripts/approach_comparison_table.py"


rule victim_quality_table:
    input:
        checked,
        lambda wildcards: targets.victim_quality_probes(config, wildcards.downstream),
    output:
        csv=report(
            "paper_figures/victim_quality_{downstream}.csv",
            caption="../report/victim_quality.rst",
            category="Victims",
        ),
        markdown="paper_figures/victim_quality_{downstream}.md",
    log:
        "logs/victim_quality_table/{downstream}.log",
    benchmark:
        "results/job_times/victim_quality_table/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    script:
        "../workflow_scripts/victim_quality_table.py"


# The paper's claims, each checked on this run's probe records: effect, paired 95%
# interval over seeds and test images, verdict.
rule claims:
    input:
        probes=targets.claims_probes(config),
        inference=targets.claims_inference_records(config),
    output:
        csv=report(
            "paper_figures/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
        ),
        markdown="paper_figures/claims.md",
    log:
        "logs/claims.log",
    benchmark:
        "results/job_times/claims.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        query_set_kinds=canonical(cfg.query_set_kinds(config)),
        victim_train_sizes=canonical(cfg.victim_train_sizes(config)),
        margin_fraction=config["paper_figures"]["claims"]["margin_fraction"],
    script:
        "../workflow_scripts/claims_table.py"
