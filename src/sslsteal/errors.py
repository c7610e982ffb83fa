"""The package's exceptions: each names the file or config key at fault and how to fix it.

Nothing here imports the rest of the package (or torch), so any module, the workflow's
rules and the tests can import them.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value the checks of ``config`` refuse, with the key at fault."""

    def __init__(self, key: str, message: str):
        super().__init__(f"config error at {key}: {message}")
        self.key = key


class DatasetUnavailableError(RuntimeError):
    """Neither a local mirror nor the download produced the dataset."""


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, unsafe or not what its path claims."""


class DumpError(RuntimeError):
    """A dump that is truncated, corrupt, or not what its path claims."""
