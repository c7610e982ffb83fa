"""GPU-hour ESTIMATE of configs/paper.yaml, stage by stage.

Measured here: (1) forward+backward+Adam throughput (images/s) of the CIFAR-stem
ResNet18 and ResNet34 at 32 px on this CPU, batch 64, as in benchmarks/bf16_speed.py;
(2) the FLOPs of one image's forward and forward+backward for every (architecture,
input size) the paper config trains or runs (torch's FlopCounterMode; a multiply-add
counts as 2 FLOPs). Assumed, not measured: the GPU's sustained FLOP/s
(``--gpu-tflops``, default 40: about a quarter of an A100's 156 TF32 peak, a typical
utilisation for ResNets at batch 64-256). The GPU/CPU factor is that assumption over
the FLOP/s this CPU sustained on ResNet34; each stage's hours = its FLOPs / the
assumed GPU FLOP/s. Data loading, job start-up and the probes' linear layers are
left out (small next to the encoders' arithmetic at these sizes).

    python benchmarks/paper_gpu_hours.py [--threads 2] [--gpu-tflops 40]
"""

import argparse
import time
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from sslsteal import config as cfg
from sslsteal.backbones import build_encoder
from sslsteal.registry import VIEWS_APPROACHES
from sslsteal.runtime import configure_torch

ROOT = Path(__file__).resolve().parents[1]

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--gpu-tflops", type=float, default=40.0, help="ASSUMED sustained GPU TFLOP/s")
args = parser.parse_args()
configure_torch(args.threads, "fp32")


def flops(name: str, size: int) -> tuple[float, float]:
    """FLOPs per image: forward, and forward+backward (training)."""
    encoder = build_encoder({"name": name}, 3, size)
    x = torch.rand(2, 3, size, size)
    with FlopCounterMode(display=False) as counter:
        encoder.eval()(x)
    forward = counter.get_total_flops() / 2
    encoder.train()
    with FlopCounterMode(display=False) as counter:
        encoder(x).sum().backward()
    return forward, counter.get_total_flops() / 2


def cpu_speed(name: str, rounds: int = 2, steps: int = 4) -> float:
    """Training images/s (forward+backward+Adam, batch 64, 32 px); best of ``rounds``."""
    encoder = build_encoder({"name": name}, 3, 32).train()
    optimiser = torch.optim.Adam(encoder.parameters(), 1e-3)
    x = torch.rand(64, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    target = torch.randn(64, encoder.representation_dim)
    best = 0.0
    for _ in range(rounds):
        for step in range(steps + 1):
            if step == 1:  # the first step warms up
                started = time.perf_counter()
            loss = torch.nn.functional.mse_loss(encoder(x), target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        best = max(best, steps * 64 / (time.perf_counter() - started))
    return best


measured = {}
for name in ("resnet18", "resnet34"):
    speed = cpu_speed(name)
    _, train_flops = flops(name, 32)
    measured[name] = (speed, train_flops)
    print(f"CPU ({args.threads} threads) {name} 32 px: {speed:.1f} images/s training "
          f"(forward+backward {train_flops / 1e9:.2f} GFLOP/image: {speed * train_flops / 1e9:.1f} GFLOP/s)")
cpu_flops = measured["resnet34"][0] * measured["resnet34"][1]
gpu_flops = args.gpu_tflops * 1e12
print(f"ASSUMED GPU: {args.gpu_tflops:g} TFLOP/s sustained = {gpu_flops / cpu_flops:.0f}x this CPU on ResNet34; "
      f"ResNet34 32 px training at {measured['resnet34'][0] * gpu_flops / cpu_flops:,.0f} images/s")

config = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())


def split_size(dataset: str, split: str) -> int:
    return cfg.split_size(config, dataset, split)


cache = {}


def cost(name: str, size: int) -> tuple[float, float]:
    if (name, size) not in cache:
        cache[(name, size)] = flops(name, size)
    return cache[(name, size)]


def victim_size(victim: dict) -> int:
    return victim["external"]["image_size"] if "external" in victim else cfg.image_size(config, victim["dataset"])


stages = {"victim training": 0.0, "dumps (victim answers)": 0.0, "extraction": 0.0, "probes (encoder forwards)": 0.0}
per_victim = {}
for vid, victim in config["victims"].items():
    name, size = victim["backbone"]["name"], victim_size(victim)
    forward, train = cost(name, size)
    total = 0.0
    if "recipe" in victim:
        n = split_size(victim["dataset"], victim.get("train_split", "train"))
        total += victim["recipe"]["epochs"] * n * 2 * train  # two views per image
        stages["victim training"] += victim["recipe"]["epochs"] * n * 2 * train
    cells = {
        (m, loss, q, b)
        for block in config["extraction"]["grid"] if vid in block.get("victims", config["victims"])
        for m in block["approaches"] for loss in block["losses"] for q in block["query_sets"] for b in block["budgets"]
    }
    pools = {q for _, _, q, _ in cells}
    for q in pools:
        qs = config["query_sets"][q]
        views = config["extraction"]["views"]["n_views"] if any(c[0] in VIEWS_APPROACHES and c[2] == q for c in cells) else 0
        n = split_size(qs["dataset"], qs["split"]) - qs.get("exclude_last", 0)
        stages["dumps (victim answers)"] += n * (1 + views) * forward
        total += n * (1 + views) * forward
    for method, loss, _, budget in cells:
        # A fixed number of optimiser steps per cell, each one batch of the loss's size.
        images = config["extraction"]["steps"] * config["extraction"]["loss_options"][loss]["batch_size"]
        stages["extraction"] += images * train
        total += images * train
    # Probes: the victim, its random init and every stolen copy encode each downstream set.
    for downstream in config["probe"]["downstream"].values():
        n = split_size(downstream["dataset"], "train") + (downstream.get("test_last") or split_size(downstream["dataset"], "test"))
        probe = (2 + len(cells)) * n * forward
        stages["probes (encoder forwards)"] += probe
        total += probe
    per_victim[vid] = total

print("\nESTIMATED GPU hours of configs/paper.yaml (FLOPs / assumed GPU FLOP/s):")
print("| stage | PFLOP | GPU hours (estimate) |\n|---|---:|---:|")
for stage, value in stages.items():
    print(f"| {stage} | {value / 1e15:,.0f} | {value / gpu_flops / 3600:,.1f} |")
print(f"| total | {sum(stages.values()) / 1e15:,.0f} | {sum(stages.values()) / gpu_flops / 3600:,.1f} |")
print("\n| victim (everything downstream of it) | GPU hours (estimate) |\n|---|---:|")
for vid, value in per_victim.items():
    print(f"| {vid} | {value / gpu_flops / 3600:,.1f} |")
print("\nFLOPs per image (forward / forward+backward, GFLOP):")
for (name, size), (forward, train) in sorted(cache.items()):
    print(f"  {name} at {size} px: {forward / 1e9:.2f} / {train / 1e9:.2f}")
