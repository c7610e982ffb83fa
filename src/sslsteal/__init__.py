"""sslsteal: stealing self-supervised encoders through their API, and defending them.

A small package behind the Snakemake workflow that reproduces Dziedzic et al.,
"On the Difficulty of Defending Self-Supervised Learning against Model Extraction"
(ICML 2022; the facts reproduced are in docs/paper.md). Modules mirror the pipeline:
``data`` -> ``victim`` -> ``api`` and ``dumps`` -> ``extraction`` -> ``probe`` ->
``tables``; the defenses are ``defenses`` (at the API) and ``watermark``.
``preprocessing``, ``augment``, ``backbones``, ``losses`` and ``training`` are the
shared building blocks, ``errors`` holds every exception the package raises.
"""

__version__ = "0.1.0"
