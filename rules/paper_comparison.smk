# Stage 7: our numbers next to the paper's published cells (paper_figures/published.yaml,
# or the file paper_figures.published names), wherever this config runs the cell; the
# others say "not run".

PUBLISHED = config["paper_figures"].get("published") or os.path.join(
    workflow.basedir, "paper_figures", "published.yaml"
)
# One entry per published cell: the paper's numbers and the probes of our runs of it.
PUBLISHED_MATCHES = targets.published_matches(config, PUBLISHED)


rule paper_comparison:
    input:
        published=PUBLISHED,
        probes=sorted(
            {
                path
                for entry in PUBLISHED_MATCHES["entries"]
                for run in entry["runs"]
                for path in run["stolen"] + run["victim_probe"]
            }
        ),
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
        "results/job_times/paper_comparison.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        matches=PUBLISHED_MATCHES,
    script:
        "../workflow_scripts/paper_comparison.py"
