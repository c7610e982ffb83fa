# Stage 6: the paper's outputs. Collecting, tabulating and plotting are separate rules,
# so a figure setting reruns only the figure.


rule collect_probes:
    input:
        victim="results/probes/{downstream}/victim/{victim}.json",
        random_init="results/probes/{downstream}/random_init/{victim}.json",
        raw_pixels="results/probes/{downstream}/raw_pixels.json",
        stolen=lambda wildcards: stolen_probes(wildcards.victim, wildcards.downstream),
    output:
        "results/tables/{victim}/{downstream}/probes.csv",
    log:
        "logs/collect_probes/{victim}/{downstream}.log",
    benchmark:
        "results/benchmarks/collect_probes/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    script:
        "../workflow_scripts/collect_probes.py"


rule stolen_accuracy_table:
    input:
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
        "results/benchmarks/stolen_accuracy_table/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    script:
        "../workflow_scripts/stolen_accuracy_table.py"


rule accuracy_vs_queries_figure:
    input:
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
        "results/benchmarks/accuracy_vs_queries_figure/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        style=canonical(config["paper_figures"].get("figure", {})),
        query_set=lambda wildcards: comparison_cell(wildcards.victim)[0],
    script:
        "../workflow_scripts/accuracy_vs_queries_figure.py"


rule method_comparison_table:
    input:
        "results/tables/{victim}/{downstream}/probes.csv",
    output:
        csv=report(
            "paper_figures/{victim}/{downstream}/method_comparison.csv",
            caption="../report/method_comparison.rst",
            category="Extraction approaches",
        ),
        markdown="paper_figures/{victim}/{downstream}/method_comparison.md",
    log:
        "logs/method_comparison_table/{victim}/{downstream}.log",
    benchmark:
        "results/benchmarks/method_comparison_table/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        query_set=lambda wildcards: comparison_cell(wildcards.victim)[0],
        budget=lambda wildcards: comparison_cell(wildcards.victim)[1],
    script:
        "../workflow_scripts/method_comparison_table.py"


rule victim_quality_table:
    input:
        victims=expand(
            "results/probes/{{downstream}}/victim/{victim}.json", victim=VICTIMS
        ),
        random_init=expand(
            "results/probes/{{downstream}}/random_init/{victim}.json", victim=VICTIMS
        ),
        raw_pixels="results/probes/{downstream}/raw_pixels.json",
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
        "results/benchmarks/victim_quality_table/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    script:
        "../workflow_scripts/victim_quality_table.py"
