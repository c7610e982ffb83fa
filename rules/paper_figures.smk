# Stage 6: the paper's outputs. Collecting, tabulating and plotting are separate rules,
# so a figure setting reruns only the figure.


rule collect_probes:
    input:
        baselines=lambda wildcards: baseline_probes(
            wildcards.victim, wildcards.downstream
        ),
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
        lambda wildcards: sorted(
            {
                path
                for victim in VICTIMS
                for path in baseline_probes(victim, wildcards.downstream)
                if "/own_ssl/" not in path
            }
        ),
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


# The paper's claims, each checked on this run's probe records: effect, paired 95%
# interval over seeds and test images, verdict.
rule claims:
    input:
        lambda wildcards: sorted(
            {
                path
                for victim in VICTIMS
                for path in baseline_probes(
                    victim, config["paper_figures"]["downstream"]
                )
                + stolen_probes(victim, config["paper_figures"]["downstream"])
            }
            | {
                path
                for kind in ("poisoning", "detection")
                for victim in defended_victims(kind)
                for path in defense_probes(
                    victim, config["paper_figures"]["downstream"], kind
                )
            }
        ),
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
        "results/benchmarks/claims.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        query_set_kinds=canonical(query_set_kinds()),
        victim_train_sizes=canonical(victim_train_sizes()),
        margin=config["paper_figures"]["claims"]["margin"],
    script:
        "../workflow_scripts/claims_table.py"
