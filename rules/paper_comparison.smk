# Stage 7: our numbers next to the paper's published cells (paper_figures/published.yaml),
# wherever this config runs the cell; the others say "not run".


rule paper_comparison:
    input:
        published=PUBLISHED,
        probes=published_inputs,
    output:
        csv=report(
            "paper_figures/paper_comparison.csv",
            caption="../report/paper_comparison.rst",
            category="Paper comparison",
        ),
        markdown="paper_figures/paper_comparison.md",
    log:
        "logs/paper_comparison.log",
    benchmark:
        "results/benchmarks/paper_comparison.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        matches=published_matches(),
    script:
        "../workflow_scripts/paper_comparison.py"
