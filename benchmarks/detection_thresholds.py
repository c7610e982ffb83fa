"""How separable are augmented duplicates from distinct queries, threshold by threshold?

For one victim and query set (cached dumps, nothing retrained), the duplicate
detector's similarity of each query to the most similar earlier one, (1 + cos) / 2 of
the victim's projections, and for each threshold the share flagged of:
- a direct attacker's queries (distinct images, as sent: the answers dump),
- a head-recreation attacker's second views (the duplicates it must send) and first
  views (distinct images, in its stream).
Prints a table; asserts nothing.

    python benchmarks/detection_thresholds.py [VICTIM] [QUERY_SET] [VIEW_SEED]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from sslsteal.backbones import load_encoder
from sslsteal.defenses import similarity_to_earlier, views_stream
from sslsteal.dumps import read_dump
from sslsteal.victim import victim_projector

ROOT = Path(__file__).resolve().parents[1]

THRESHOLDS = (0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995)


def main(victim: str = "simclr_fashion_mnist", query_set: str = "fashion_mnist_test", view_seed: str = "0") -> None:
    torch.set_num_threads(1)
    _, meta = load_encoder(ROOT / f"results/victims/{victim}/encoder.pt")
    projector = victim_projector(meta)
    if projector is None:
        raise SystemExit(f"victim {victim} has no projection head")
    folder = ROOT / f"results/dumps/{victim}/{query_set}"
    direct = read_dump(folder / "answers.h5").representation
    views = read_dump(folder / f"views_seed{view_seed}.h5").representation
    with torch.no_grad():
        direct_similarity = similarity_to_earlier(projector(direct))
        stream_similarity = similarity_to_earlier(projector(views_stream(views)))
    n_views = views.shape[0]
    first, later = stream_similarity[0::n_views], torch.cat([stream_similarity[v::n_views] for v in range(1, n_views)])
    print(f"victim {victim}, {len(direct):,} queries from {query_set}; {n_views} views per image for head recreation")
    quantiles = torch.tensor([0.1, 0.5, 0.9])
    for name, values in (("direct queries", direct_similarity[1:]), ("later views", later), ("first views", first[1:])):
        q = torch.quantile(values, quantiles).tolist()
        print(f"  similarity to the nearest earlier query, {name}: 10% {q[0]:.3f}, median {q[1]:.3f}, 90% {q[2]:.3f}")
    print("\n| threshold | direct queries flagged | later views flagged (recall) | first views flagged |")
    print("|---:|---:|---:|---:|")
    for t in THRESHOLDS:
        shares = [float((values > t).float().mean()) for values in (direct_similarity, later, first)]
        print(f"| {t} | " + " | ".join(f"{100 * s:.1f}%" for s in shares) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:])
