"""Defense names <-> settings, without torch (the Snakefile imports this at start-up).

A path names its defense: ``noise<sigma>`` (prediction poisoning: Gaussian noise of
sigma times the answers' RMS) or ``detect<threshold>`` (augmented-duplicate detection:
flag a query whose projection has (1 + cos) / 2 above the threshold with an earlier one).
"""

from __future__ import annotations

import math


def parse_defense(name: str) -> dict:
    """A defense's settings from its name, e.g. ``noise0.3`` or ``detect0.8``. The name is
    the path wildcard, so any setting can be asked for as a target."""
    for prefix, kind, key in (("noise", "noise", "sigma"), ("detect", "detection", "threshold")):
        if name.startswith(prefix):
            try:
                value = float(name[len(prefix) :])
            except ValueError:
                break
            if not math.isfinite(value) or value < 0 or (kind == "detection" and value >= 1):
                raise ValueError(f"defense {name!r}: {key} must be finite, >= 0 (and < 1 for a threshold)")
            return {"kind": kind, key: value}
    raise ValueError(f"unknown defense {name!r}: expected noise<sigma> (e.g. noise0.3) or detect<threshold> (e.g. detect0.8)")


def defense_name(kind: str, value: float) -> str:
    """Inverse of :func:`parse_defense`: ``noise0.3``, ``detect0.8``."""
    return f"{'noise' if kind == 'noise' else 'detect'}{value:g}"
