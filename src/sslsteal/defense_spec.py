"""Defense names <-> settings, without torch (the Snakefile imports this at start-up).

A path names its defense, by the config block that sets it and the setting:

- ``poisoning_sigma<sigma>``: prediction poisoning, Gaussian noise of sigma times the
  answers' centred standard deviation;
- ``detection_fpr<rate>``: augmented-duplicate detection at the threshold that flags
  ``rate`` of a calibration stream of legitimate queries (the operating point the
  config asks for; the threshold comes from the victim's calibration record);
- ``detection_threshold<threshold>``: the same detector at a fixed threshold on
  (1 + cos) / 2 (the paper's 0.8), kept as a target to show what an uncalibrated
  threshold does.
"""

from __future__ import annotations

import math

# (prefix, kind, setting)
PREFIXES = (
    ("poisoning_sigma", "poisoning", "sigma"),
    ("detection_fpr", "detection", "fpr"),
    ("detection_threshold", "detection", "threshold"),
    ("b4b_sybils", "b4b", "sybils"),
)
# Names of earlier versions, refused with the new one.
OLD_PREFIXES = (("noise", "poisoning_sigma"), ("detectfpr", "detection_fpr"), ("detect", "detection_threshold"))
EXAMPLES = (
    "poisoning_sigma<sigma> (e.g. poisoning_sigma0.3), detection_fpr<rate> (e.g. detection_fpr0.05) or "
    "detection_threshold<t> (e.g. detection_threshold0.8) or b4b_sybils<k> (e.g. b4b_sybils4)"
)


# The keys of defenses.b4b that shape B4B's answers (the rest say where it runs).
B4B_SETTINGS = ("bits", "scale", "growth", "seed", "transform")


def parse_defense(name: str) -> dict:
    """A defense's settings from its name, e.g. ``poisoning_sigma0.3`` ->
    ``{"kind": "poisoning", "sigma": 0.3}``. The name is the path wildcard, so any
    setting can be asked for as a target."""
    for prefix, kind, key in PREFIXES:
        if name.startswith(prefix):
            try:
                value = float(name[len(prefix) :])
            except ValueError:
                break
            if key == "sybils":
                # A count of accounts: written as a whole number (b4b_sybils4, not 4.0).
                if not name[len(prefix) :].isdigit() or value < 1:
                    raise ValueError(f"defense {name!r}: sybils must be a whole number >= 1 (e.g. b4b_sybils4)")
                return {"kind": kind, key: int(value)}
            bounded = key in ("threshold", "fpr")
            if not math.isfinite(value) or value < 0 or (bounded and not 0 < value < 1):
                rule = "in (0, 1)" if bounded else "finite and >= 0"
                raise ValueError(f"defense {name!r}: {key} must be {rule}")
            return {"kind": kind, key: value}
    for old, new in OLD_PREFIXES:
        if name.startswith(old):
            raise ValueError(f"defense {name!r}: renamed, write {new}{name[len(old):]}")
    raise ValueError(f"unknown defense {name!r}: expected {EXAMPLES}")


def defense_name(kind: str, value: float, key: str | None = None) -> str:
    """Inverse of :func:`parse_defense`: ``poisoning_sigma0.3``, ``detection_fpr0.05``,
    ``detection_threshold0.8``, ``b4b_sybils4``. ``key`` tells the two detection names apart (``fpr``
    or ``threshold``)."""
    if kind == "b4b":
        return f"b4b_sybils{int(value)}"
    if kind == "poisoning":
        return f"poisoning_sigma{value:g}"
    return f"detection_{'fpr' if key == 'fpr' else 'threshold'}{value:g}"


def needs_calibration(spec: dict) -> bool:
    """Whether the defense's threshold comes from the victim's calibration record."""
    return spec["kind"] == "detection" and "fpr" in spec
