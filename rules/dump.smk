# Stage 3: the API's answers. The victim's representation of every image of a query
# pool, computed once. Extraction reads only these files, never the victim model.


rule dump_victim:
    input:
        encoder="results/victims/{victim}/encoder.pt",
        dataset=lambda wildcards: prepared(config["query_sets"][wildcards.query_set]["dataset"]),
    output:
        dump="results/dumps/{victim}/{query_set}.h5",
    params:
        query_set=lambda wildcards: config["query_sets"][wildcards.query_set],
    threads: config["threads"]["probe"]
    log:
        "logs/dump_victim/{victim}/{query_set}.log",
    benchmark:
        "results/benchmarks/dump_victim/{victim}/{query_set}.tsv"
    script:
        "../workflow_scripts/dump_victim.py"
