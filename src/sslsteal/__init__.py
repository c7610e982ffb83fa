"""sslsteal: stealing self-supervised encoders through their API, and defending them.

A small package behind the Snakemake workflow that reproduces Dziedzic et al.,
"On the Difficulty of Defending Self-Supervised Learning against Model Extraction"
(ICML 2022). Modules mirror the pipeline: ``data`` -> ``victim`` -> ``dumps`` ->
``extraction`` -> ``probe`` -> ``tables``; ``losses``, ``backbones`` and ``augment``
are the shared building blocks.
"""

__version__ = "0.1.0"
