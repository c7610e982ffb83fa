"""Defense names <-> settings, without torch (the Snakefile imports this at start-up).

A path names its defense:

- ``noise<sigma>``: prediction poisoning, Gaussian noise of sigma times the answers'
  centred standard deviation;
- ``detectfpr<rate>``: augmented-duplicate detection at the threshold that flags
  ``rate`` of a calibration stream of legitimate queries (the operating point the
  config asks for; the threshold comes from the victim's calibration record);
- ``detect<threshold>``: the same detector at a fixed threshold on (1 + cos) / 2 (the
  paper's 0.8), kept as a target to show what an uncalibrated threshold does.
"""

from __future__ import annotations

import math

# Longest prefix first: "detectfpr0.05" is not "detect" with threshold "fpr0.05".
PREFIXES = (("noise", "noise", "sigma"), ("detectfpr", "detection", "fpr"), ("detect", "detection", "threshold"))


def parse_defense(name: str) -> dict:
    """A defense's settings from its name, e.g. ``noise0.3``, ``detectfpr0.05`` or
    ``detect0.8``. The name is the path wildcard, so any setting can be asked for as a
    target."""
    for prefix, kind, key in PREFIXES:
        if name.startswith(prefix):
            try:
                value = float(name[len(prefix) :])
            except ValueError:
                break
            bounded = key in ("threshold", "fpr")
            if not math.isfinite(value) or value < 0 or (bounded and not 0 < value < 1):
                rule = "in (0, 1)" if bounded else "finite and >= 0"
                raise ValueError(f"defense {name!r}: {key} must be {rule}")
            return {"kind": kind, key: value}
    raise ValueError(
        f"unknown defense {name!r}: expected noise<sigma> (e.g. noise0.3), detectfpr<rate> "
        "(e.g. detectfpr0.05) or detect<threshold> (e.g. detect0.8)"
    )


def defense_name(kind: str, value: float, key: str | None = None) -> str:
    """Inverse of :func:`parse_defense`: ``noise0.3``, ``detectfpr0.05``, ``detect0.8``.
    ``key`` tells the two detection names apart (``fpr`` or ``threshold``)."""
    if kind == "noise":
        return f"noise{value:g}"
    return f"{'detectfpr' if key == 'fpr' else 'detect'}{value:g}"


def needs_calibration(spec: dict) -> bool:
    """Whether the defense's threshold comes from the victim's calibration record."""
    return spec["kind"] == "detection" and "fpr" in spec
