# Stage 7: defenses at the API (docs/paper.md, "Defenses the paper examines"). A defense
# transforms the cached answers a user receives: prediction poisoning (noise<sigma>) or
# augmented-duplicate detection at a calibrated false-positive rate (detectfpr<rate>;
# detect<threshold> for a fixed threshold). The undefended dumps stay as they are; every
# attack cell and the legitimate user's probe can rerun against a defense.


# The detector's operating point, set on legitimate queries only: never on an attack's.
rule calibrate_detection:
    input:
        encoder="results/victims/{victim}/encoder.pt",
        dataset=calibration_dataset,
    output:
        "results/defenses/{victim}/detection_calibration.json",
    log:
        "logs/calibrate_detection/{victim}.log",
    benchmark:
        "results/benchmarks/calibrate_detection/{victim}.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: config["threads"]["probe"]
    resources:
        **RESOURCES["dump_victim"],
        gpu=ENCODER_GPUS,
    params:
        calibration=lambda wildcards: canonical(detection_calibration(wildcards.victim)),
        target_fprs=[DEFENSES.get("detection", {}).get("target_fpr", 0.05)],
        victim_hash=victim_hash,
        precision=PRECISION,
    script:
        "../workflow_scripts/calibrate_detection.py"


rule defend_answers:
    input:
        dump="results/dumps/{victim}/{query_set}/{answers}.h5",
        # The defender owns the victim: the detector applies its projection head.
        encoder="results/victims/{victim}/encoder.pt",
        calibration=calibration_record,
    output:
        dump="results/dumps/{victim}/{query_set}/defended/{defense}/{answers}.h5",
    log:
        "logs/defend_answers/{victim}/{query_set}/{defense}/{answers}.log",
    benchmark:
        "results/benchmarks/defend_answers/{victim}/{query_set}/{defense}/{answers}.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: config["threads"]["probe"]
    resources:
        **RESOURCES["dump_victim"],
    params:
        seed=config["seed"],
        victim_hash=victim_hash,
    script:
        "../workflow_scripts/defend_answers.py"


# The attack, unchanged, on the defended answers.
use rule extract as extract_defended with:
    input:
        dump=defended_extraction_dump,
        dataset=query_dataset,
    output:
        encoder="results/defended/{defense}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}/seed{seed}/encoder.pt",
        train_log="results/defended/{defense}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}/seed{seed}/train_log.tsv",
    log:
        "logs/extract/defended/{defense}/{victim}/{method}/{loss}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/benchmarks/extract/defended/{defense}/{victim}/{method}/{loss}/{query_set}/{budget}/seed{seed}.tsv"


use rule probe_stolen as probe_defended_stolen with:
    input:
        encoder="results/defended/{defense}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}/seed{seed}/encoder.pt",
        victim="results/victims/{victim}/encoder.pt",
        dataset=downstream_dataset,
    output:
        "results/probes/{downstream}/defended/{defense}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}/seed{seed}.json",
    log:
        "logs/probe/{downstream}/defended/{defense}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/benchmarks/probe/{downstream}/defended/{defense}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}/seed{seed}.tsv"


# The legitimate user: sends its downstream train then test images through the
# defended API and trains its linear probe on the answers it gets.
use rule probe_stolen as probe_defended_victim with:
    input:
        encoder="results/victims/{victim}/encoder.pt",
        dataset=downstream_dataset,
        calibration=calibration_record,
    output:
        "results/probes/{downstream}/defended/{defense}/victim/{victim}/seed{seed}.json",
    log:
        "logs/probe/{downstream}/defended/{defense}/victim/{victim}/seed{seed}.log",
    benchmark:
        "results/benchmarks/probe/{downstream}/defended/{defense}/victim/{victim}/seed{seed}.tsv"
    params:
        encoder_kind="victim",
        defense=lambda wildcards: wildcards.defense,


rule collect_defense_probes:
    input:
        lambda wildcards: defense_probes(
            wildcards.victim, wildcards.downstream, wildcards.kind
        ),
    output:
        "results/tables/{victim}/{downstream}/defense_{kind}.csv",
    log:
        "logs/collect_defense_probes/{victim}/{downstream}/{kind}.log",
    benchmark:
        "results/benchmarks/collect_defense_probes/{victim}/{downstream}/{kind}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    script:
        "../workflow_scripts/collect_probes.py"


rule defense_poisoning_table:
    input:
        "results/tables/{victim}/{downstream}/defense_poisoning.csv",
    output:
        csv="paper_figures/{victim}/{downstream}/defense_poisoning.csv",
        markdown="paper_figures/{victim}/{downstream}/defense_poisoning.md",
        figure=report(
            "paper_figures/{victim}/{downstream}/defense_poisoning.png",
            caption="../report/defense_poisoning.rst",
            category="Defenses",
        ),
    log:
        "logs/defense_poisoning_table/{victim}/{downstream}.log",
    benchmark:
        "results/benchmarks/defense_poisoning_table/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        style=canonical(config["paper_figures"].get("figure", {})),
    script:
        "../workflow_scripts/defense_poisoning_table.py"


rule defense_detection_table:
    input:
        probes="results/tables/{victim}/{downstream}/defense_detection.csv",
        calibration="results/defenses/{victim}/detection_calibration.json",
        scores=lambda wildcards: detection_scores_dumps(wildcards.victim),
    output:
        csv="paper_figures/{victim}/{downstream}/defense_detection.csv",
        markdown="paper_figures/{victim}/{downstream}/defense_detection.md",
        figure=report(
            "paper_figures/{victim}/{downstream}/defense_detection.png",
            caption="../report/defense_detection.rst",
            category="Defenses",
        ),
        roc=report(
            "paper_figures/{victim}/{downstream}/defense_detection_roc.png",
            caption="../report/defense_detection_roc.rst",
            category="Defenses",
        ),
    log:
        "logs/defense_detection_table/{victim}/{downstream}.log",
    benchmark:
        "results/benchmarks/defense_detection_table/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        style=canonical(config["paper_figures"].get("figure", {})),
        attacks=lambda wildcards: canonical(detection_attacks(wildcards.victim)),
    script:
        "../workflow_scripts/defense_detection_table.py"


# Watermark verification: the watermarked victim's secret head applied to a suspect's
# representations of rotated held-out images; the table tests each suspect's accuracy
# against the null of encoders that never saw the victim.
rule verify_watermark_victim:
    input:
        watermarked="results/victims/{victim}/encoder.pt",
        suspect="results/victims/{suspect}/encoder.pt",
        dataset=watermark_dataset,
    output:
        "results/watermark/{victim}/victim/{suspect}.json",
    log:
        "logs/verify_watermark/{victim}/victim/{suspect}.log",
    benchmark:
        "results/benchmarks/verify_watermark/{victim}/victim/{suspect}.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: config["threads"]["probe"]
    resources:
        **RESOURCES["probe"],
        gpu=ENCODER_GPUS,
    params:
        verification=canonical(DEFENSES.get("watermark", {})),
        victim_hash=victim_hash,
        suspect_hash=lambda wildcards: config_hash(
            canonical(config["victims"][wildcards.suspect])
        ),
        suspect_kind="victim",
        precision=PRECISION,
    script:
        "../workflow_scripts/verify_watermark.py"


use rule verify_watermark_victim as verify_watermark_stolen with:
    input:
        watermarked="results/victims/{victim}/encoder.pt",
        suspect="results/stolen/{victim}/{method}/{loss}/{query_set}/{budget}/seed{seed}/encoder.pt",
        dataset=watermark_dataset,
    output:
        "results/watermark/{victim}/stolen/{method}/{loss}/{query_set}/{budget}/seed{seed}.json",
    log:
        "logs/verify_watermark/{victim}/stolen/{method}/{loss}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/benchmarks/verify_watermark/{victim}/stolen/{method}/{loss}/{query_set}/{budget}/seed{seed}.tsv"
    params:
        suspect_hash=victim_hash,
        suspect_kind="stolen",


# The null: encoders that never saw the watermarked victim.
use rule verify_watermark_victim as verify_watermark_independent with:
    input:
        watermarked="results/victims/{victim}/encoder.pt",
        suspect="results/independent/{suspect}/encoder.pt",
        dataset=watermark_dataset,
    output:
        "results/watermark/{victim}/independent/{suspect}.json",
    log:
        "logs/verify_watermark/{victim}/independent/{suspect}.log",
    benchmark:
        "results/benchmarks/verify_watermark/{victim}/independent/{suspect}.tsv"
    params:
        suspect_hash=lambda wildcards: config_hash(
            canonical(config["victims"][wildcards.suspect])
        ),
        suspect_kind="independent",


use rule verify_watermark_victim as verify_watermark_own_ssl with:
    input:
        watermarked="results/victims/{victim}/encoder.pt",
        suspect="results/own_ssl/{suspect}/{query_set}/{budget}/seed{seed}/encoder.pt",
        dataset=watermark_dataset,
    output:
        "results/watermark/{victim}/own_ssl/{suspect}/{query_set}/{budget}/seed{seed}.json",
    log:
        "logs/verify_watermark/{victim}/own_ssl/{suspect}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/benchmarks/verify_watermark/{victim}/own_ssl/{suspect}/{query_set}/{budget}/seed{seed}.tsv"
    params:
        suspect_hash=lambda wildcards: config_hash(
            canonical(config["victims"][wildcards.suspect])
        ),
        suspect_kind="own_ssl",


use rule verify_watermark_victim as verify_watermark_random_init with:
    input:
        watermarked="results/victims/{victim}/encoder.pt",
        dataset=watermark_dataset,
    output:
        "results/watermark/{victim}/random_init/seed{seed}.json",
    log:
        "logs/verify_watermark/{victim}/random_init/seed{seed}.log",
    benchmark:
        "results/benchmarks/verify_watermark/{victim}/random_init/seed{seed}.tsv"
    params:
        suspect_hash=None,
        suspect_kind="random_init",


rule watermark_table:
    input:
        suspects=lambda wildcards: watermark_suspects(wildcards.victim),
        null=lambda wildcards: watermark_null(wildcards.victim),
        watermarked=expand(
            "results/probes/{downstream}/victim/{{victim}}/seed{seed}.json",
            downstream=config["paper_figures"]["downstream"],
            seed=SEED0,
        ),
        plain=plain_twin_probe,
    output:
        csv="paper_figures/{victim}/watermark.csv",
        markdown="paper_figures/{victim}/watermark.md",
        figure=report(
            "paper_figures/{victim}/watermark.png",
            caption="../report/watermark.rst",
            category="Defenses",
        ),
    log:
        "logs/watermark_table/{victim}.log",
    benchmark:
        "results/benchmarks/watermark_table/{victim}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        style=canonical(config["paper_figures"].get("figure", {})),
        false_positive_rate=DEFENSES.get("watermark", {}).get(
            "false_positive_rate", 0.05
        ),
    script:
        "../workflow_scripts/watermark_table.py"
