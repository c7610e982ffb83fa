# Stage 7: defenses at the API (docs/paper.md, "Defenses the paper examines"). A defense
# transforms the cached answers a user receives: prediction poisoning (poisoning_sigma<sigma>),
# augmented-duplicate detection at a calibrated false-positive rate
# (detection_fpr<rate>; detection_threshold<t> for a fixed threshold), or B4B's
# coverage-scaled noise and per-account transformations (b4b_sybils<k>, docs/defenses.md). The undefended dumps stay as they are; every
# attack cell and the legitimate user's probe can rerun against a defense.


# The detector's operating point, set on legitimate queries only: never on an attack's.
rule calibrate_detection:
    input:
        checked,
        encoder="results/victims/{victim}/encoder.pt",
        dataset=calibration_dataset,
    output:
        "results/defenses/{victim}/detection_calibration.json",
    log:
        "logs/calibrate_detection/{victim}.log",
    benchmark:
        "results/job_times/calibrate_detection/{victim}.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: THREADS["inference"]
    resources:
        **RESOURCES["dump_victim"],
        gpu=ENCODER_GPUS,
    params:
        calibration=lambda wildcards: canonical(
            cfg.detection_calibration(config, wildcards.victim)
        ),
        target_fprs=[DEFENSES.get("detection", {}).get("target_fpr", 0.05)],
        victim_hash=victim_hash,
        precision=PRECISION,
    script:
        "../workflow_scripts/calibrate_detection.py"


rule defend_answers:
    input:
        checked,
        dump="results/dumps/{victim}/{query_set}/{answers}.h5",
        # The defender owns the victim: the detector applies its projection head.
        encoder="results/victims/{victim}/encoder.pt",
        calibration=calibration_record,
    output:
        dump="results/dumps/{victim}/{query_set}/defended/{defense}/{answers}.h5",
    log:
        "logs/defend_answers/{victim}/{query_set}/{defense}/{answers}.log",
    benchmark:
        "results/job_times/defend_answers/{victim}/{query_set}/{defense}/{answers}.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: THREADS["inference"]
    resources:
        **RESOURCES["dump_victim"],
    params:
        seed=config["seed"],
        victim_hash=victim_hash,
        b4b=b4b_settings,
    script:
        "../workflow_scripts/defend_answers.py"


# The attack, unchanged, on the defended answers.
use rule extract as extract_defended with:
    input:
        checked,
        dump=defended_extraction_dump,
        dataset=query_dataset,
    output:
        encoder="results/defended/{defense}/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}/encoder.pt",
        train_log="results/defended/{defense}/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}/train_log.tsv",
    log:
        "logs/extract/defended/{defense}/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/job_times/extract/defended/{defense}/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}.tsv"


use rule probe_stolen as probe_defended_stolen with:
    input:
        checked,
        encoder="results/defended/{defense}/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}/encoder.pt",
        victim="results/victims/{victim}/encoder.pt",
        dataset=downstream_dataset,
    output:
        "results/probes/{downstream}/defended/{defense}/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}.json",
    log:
        "logs/probe/{downstream}/defended/{defense}/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/job_times/probe/{downstream}/defended/{defense}/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}.tsv"


# The legitimate user: sends its downstream train then test images through the
# defended API and trains its linear probe on the answers it gets.
use rule probe_stolen as probe_defended_victim with:
    input:
        checked,
        encoder="results/victims/{victim}/encoder.pt",
        dataset=downstream_dataset,
        calibration=calibration_record,
    output:
        "results/probes/{downstream}/defended/{defense}/victim/{victim}/seed{seed}.json",
    log:
        "logs/probe/{downstream}/defended/{defense}/victim/{victim}/seed{seed}.log",
    benchmark:
        "results/job_times/probe/{downstream}/defended/{defense}/victim/{victim}/seed{seed}.tsv"
    params:
        encoder_kind="victim",
        defense=lambda wildcards: wildcards.defense,
        b4b=b4b_settings,


rule collect_defense_probes:
    input:
        checked,
        lambda wildcards: targets.defense_probes(
            config, wildcards.victim, wildcards.downstream, wildcards.kind
        ),
    output:
        "results/tables/{victim}/{downstream}/defense_{kind}.csv",
    log:
        "logs/collect_defense_probes/{victim}/{downstream}/{kind}.log",
    benchmark:
        "results/job_times/collect_defense_probes/{victim}/{downstream}/{kind}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    script:
        "../workflow_scripts/collect_probes.py"


rule defense_poisoning_table:
    input:
        checked,
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
        "results/job_times/defense_poisoning_table/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        style=canonical(config["paper_figures"].get("figure", {})),
    script:
        "../workflow_scripts/defense_poisoning_table.py"


rule defense_b4b_table:
    input:
        checked,
        "results/tables/{victim}/{downstream}/defense_b4b.csv",
    output:
        csv="paper_figures/{victim}/{downstream}/defense_b4b.csv",
        markdown="paper_figures/{victim}/{downstream}/defense_b4b.md",
        figure=report(
            "paper_figures/{victim}/{downstream}/defense_b4b.png",
            caption="../report/defense_b4b.rst",
            category="Defenses",
        ),
    log:
        "logs/defense_b4b_table/{victim}/{downstream}.log",
    benchmark:
        "results/job_times/defense_b4b_table/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        style=canonical(config["paper_figures"].get("figure", {})),
    script:
        "../workflow_scripts/defense_b4b_table.py"


rule defense_detection_table:
    input:
        checked,
        probes="results/tables/{victim}/{downstream}/defense_detection.csv",
        calibration="results/defenses/{victim}/detection_calibration.json",
        scores=lambda wildcards: targets.detection_scores_dumps(
            config, wildcards.victim
        ),
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
        "results/job_times/defense_detection_table/{victim}/{downstream}.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        style=canonical(config["paper_figures"].get("figure", {})),
        attacks=lambda wildcards: canonical(
            targets.detection_attacks(config, wildcards.victim)
        ),
    script:
        "../workflow_scripts/defense_detection_table.py"


# Watermark verification: the watermarked victim's secret head applied to a suspect's
# representations of rotated held-out images; the table tests each suspect's accuracy
# against the null of encoders that never saw the victim.
rule verify_watermark_victim:
    input:
        checked,
        watermarked="results/victims/{victim}/encoder.pt",
        suspect="results/victims/{suspect}/encoder.pt",
        dataset=watermark_dataset,
    output:
        "results/watermark/{victim}/victim/{suspect}.json",
    log:
        "logs/verify_watermark/{victim}/victim/{suspect}.log",
    benchmark:
        "results/job_times/verify_watermark/{victim}/victim/{suspect}.tsv"
    conda:
        "../envs/sslsteal.yaml"
    threads: THREADS["inference"]
    resources:
        **RESOURCES["probe"],
        gpu=ENCODER_GPUS,
    params:
        verification=canonical(DEFENSES.get("watermark", {})),
        victim_hash=victim_hash,
        suspect_hash=suspect_hash,
        suspect_kind="victim",
        precision=PRECISION,
    script:
        "../workflow_scripts/verify_watermark.py"


use rule verify_watermark_victim as verify_watermark_stolen with:
    input:
        checked,
        watermarked="results/victims/{victim}/encoder.pt",
        suspect="results/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}/encoder.pt",
        dataset=watermark_dataset,
    output:
        "results/watermark/{victim}/stolen/{approach}/{loss}/{query_set}/{budget}/seed{seed}.json",
    log:
        "logs/verify_watermark/{victim}/stolen/{approach}/{loss}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/job_times/verify_watermark/{victim}/stolen/{approach}/{loss}/{query_set}/{budget}/seed{seed}.tsv"
    params:
        suspect_hash=victim_hash,
        suspect_kind="stolen",


use rule verify_watermark_victim as verify_watermark_defended_stolen with:
    input:
        checked,
        watermarked="results/victims/{victim}/encoder.pt",
        suspect="results/defended/{defense}/stolen/{victim}/{approach}/{loss}/{query_set}/{budget}/seed{seed}/encoder.pt",
        dataset=watermark_dataset,
    output:
        "results/watermark/{victim}/defended/{defense}/stolen/{approach}/{loss}/{query_set}/{budget}/seed{seed}.json",
    log:
        "logs/verify_watermark/{victim}/defended/{defense}/stolen/{approach}/{loss}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/job_times/verify_watermark/{victim}/defended/{defense}/stolen/{approach}/{loss}/{query_set}/{budget}/seed{seed}.tsv"
    params:
        suspect_hash=victim_hash,
        suspect_kind="stolen",


# The null: encoders that never saw the watermarked victim.
use rule verify_watermark_victim as verify_watermark_independent with:
    input:
        checked,
        watermarked="results/victims/{victim}/encoder.pt",
        suspect="results/independent/{suspect}/encoder.pt",
        dataset=watermark_dataset,
    output:
        "results/watermark/{victim}/independent/{suspect}.json",
    log:
        "logs/verify_watermark/{victim}/independent/{suspect}.log",
    benchmark:
        "results/job_times/verify_watermark/{victim}/independent/{suspect}.tsv"
    params:
        suspect_hash=suspect_hash,
        suspect_kind="independent",


use rule verify_watermark_victim as verify_watermark_own_ssl with:
    input:
        checked,
        watermarked="results/victims/{victim}/encoder.pt",
        suspect="results/own_ssl/{suspect}/{query_set}/{budget}/seed{seed}/encoder.pt",
        dataset=watermark_dataset,
    output:
        "results/watermark/{victim}/own_ssl/{suspect}/{query_set}/{budget}/seed{seed}.json",
    log:
        "logs/verify_watermark/{victim}/own_ssl/{suspect}/{query_set}/{budget}/seed{seed}.log",
    benchmark:
        "results/job_times/verify_watermark/{victim}/own_ssl/{suspect}/{query_set}/{budget}/seed{seed}.tsv"
    params:
        suspect_hash=suspect_hash,
        suspect_kind="own_ssl",


use rule verify_watermark_victim as verify_watermark_random_init with:
    input:
        checked,
        watermarked="results/victims/{victim}/encoder.pt",
        dataset=watermark_dataset,
    output:
        "results/watermark/{victim}/random_init/seed{seed}.json",
    log:
        "logs/verify_watermark/{victim}/random_init/seed{seed}.log",
    benchmark:
        "results/job_times/verify_watermark/{victim}/random_init/seed{seed}.tsv"
    params:
        suspect_hash=None,
        suspect_kind="random_init",


rule watermark_table:
    input:
        checked,
        suspects=lambda wildcards: targets.watermark_suspects(config, wildcards.victim),
        null=lambda wildcards: targets.watermark_null(config, wildcards.victim),
        watermarked=expand(
            "results/probes/{downstream}/victim/{{victim}}/seed{seed}.json",
            downstream=config["paper_figures"]["downstream"],
            seed=SEED0,
        ),
        plain=lambda wildcards: targets.plain_twin_probe(config, wildcards.victim),
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
        "results/job_times/watermark_table/{victim}.tsv"
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


# Which attack beats which defense: every attack of paper_figures.attack_vs_defense
# against every defense it lists, at one query set and budget, with the legitimate
# user's accuracy beside each defense and each copy's ownership verification.
rule attack_vs_defense_table:
    input:
        checked,
        records=lambda wildcards: targets.attack_vs_defense_inputs(config),
    output:
        csv="paper_figures/attack_vs_defense.csv",
        markdown="paper_figures/attack_vs_defense.md",
        figure=report(
            "paper_figures/attack_vs_defense.png",
            caption="../report/attack_vs_defense.rst",
            category="Defenses",
        ),
    log:
        "logs/attack_vs_defense_table.log",
    benchmark:
        "results/job_times/attack_vs_defense_table.tsv"
    localrule: True
    conda:
        "../envs/sslsteal.yaml"
    resources:
        **RESOURCES["light"],
    params:
        cells=lambda wildcards: canonical(targets.attack_vs_defense_cells(config)),
        watermark_null=lambda wildcards: canonical(
            {
                victim: targets.watermark_null(config, victim)
                for victim in cfg.attack_vs_defense_victims(config)
                if victim in cfg.watermarked_victims(config)
            }
        ),
        watermark_fpr=DEFENSES.get("watermark", {}).get("false_positive_rate", 0.05),
        style=canonical(config["paper_figures"].get("figure", {})),
    script:
        "../workflow_scripts/attack_vs_defense_table.py"
