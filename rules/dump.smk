# Stage 3: the API's answers. The victim's representation of every image of a query
# pool, computed once. Extraction reads only these files, never the victim model.


rule dump_victim:
    input:
        encoder="results/victims/{victim}/encoder.pt",
        dataset=query_dataset,
    output:
        dump="results/dumps/{victim}/{query_set}.h5",
    log:
        "logs/dump_victim/{victim}/{query_set}.log",
    benchmark:
        "results/benchmarks/dump_victim/{victim}/{query_set}.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: config["threads"]["probe"]
    params:
        query_set=lambda wildcards: canonical(config["query_sets"][wildcards.query_set]),
    script:
        "../workflow_scripts/dump_victim.py"
