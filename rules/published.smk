# Functions of the paper-comparison stage: which of this config's runs reproduce each
# published cell (paper_figures/published.yaml).

PUBLISHED = os.path.join(workflow.basedir, "paper_figures", "published.yaml")


def published_matches():
    """One entry per published cell: the paper's numbers and, for every run of this
    config that reproduces it, the probe JSONs of the stolen copy and of its victim."""
    import yaml

    with open(PUBLISHED) as f:
        published = yaml.safe_load(f)
    entries = []
    for cell in published["cells"]:
        runs = []
        for vid in VICTIMS:
            victim = config["victims"][vid]
            wanted = cell["victim"]
            if (victim["method"], victim.get("dataset")) != (
                wanted["method"],
                wanted["dataset"],
            ):
                continue
            for name, downstream in sorted(config["probe"]["downstream"].items()):
                if downstream["dataset"] != cell["downstream_dataset"]:
                    continue
                cells = {}
                for method, loss, query_set, budget, seed in extraction_cells(vid):
                    cells.setdefault((method, loss, query_set, budget), []).append(seed)
                for (method, loss, query_set, budget), seeds in sorted(cells.items()):
                    queries = config["query_sets"][query_set]
                    if (method, loss, budget) != (
                        cell["method"],
                        cell["loss"],
                        cell["budget"],
                    ):
                        continue
                    if queries.get("dataset") != cell["query_dataset"]:
                        continue
                    if cell.get("query_split", queries["split"]) != queries["split"]:
                        continue
                    probes = f"results/probes/{name}"
                    # Every seed of the cell, each paired with the victim's probe at it.
                    runs.append(
                        {
                            "victim": vid,
                            "downstream": name,
                            "query_set": query_set,
                            "stolen": [
                                f"{probes}/stolen/{vid}/{method}/{loss}/{query_set}/{budget}/seed{seed}.json"
                                for seed in seeds
                            ],
                            "victim_probe": [
                                f"{probes}/victim/{vid}/seed{seed}.json"
                                for seed in seeds
                            ],
                        }
                    )
        entries.append({"published": cell, "runs": runs})
    return {"source": published["source"], "entries": entries}


def published_inputs(wildcards):
    paths = []
    for entry in published_matches()["entries"]:
        for run in entry["runs"]:
            paths += run["stolen"] + run["victim_probe"]
    return sorted(set(paths))
