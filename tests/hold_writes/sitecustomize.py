"""Test-only fault injection for tests/test_workflow.py (the SIGKILL test); on
PYTHONPATH only there, so every Python process of that snakemake run (the jobs among
them) imports it at start-up.

With SSLSTEAL_TEST_HOLD_WRITE=<path suffix> in the environment, the first output whose
path ends with that suffix and that goes through sslsteal.io.atomic_path (checkpoints,
dumps, JSON, tables, dataset files) is held: once its temporary file is written and
before the rename, the job writes SSLSTEAL_TEST_HOLD_MARKER (JSON: its pid, the
temporary file, the output) and sleeps until it is killed. The test waits for the
marker, so it kills at a moment known to be inside a job that is writing, however
slow the machine is. Without the variable this module does nothing.
"""

import os

_SUFFIX = os.environ.get("SSLSTEAL_TEST_HOLD_WRITE")

if _SUFFIX:
    import contextlib
    import json
    import sys
    import time
    from pathlib import Path

    try:
        import sslsteal.io as _io
    except ImportError:  # the package not pip-installed: the checkout's src/
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
        import sslsteal.io as _io

    _atomic_path = _io.atomic_path

    @contextlib.contextmanager
    def _holding_atomic_path(path):
        with _atomic_path(path) as tmp:
            yield tmp
            if Path(path).as_posix().endswith(_SUFFIX):
                marker = Path(os.environ["SSLSTEAL_TEST_HOLD_MARKER"])
                held = {"pid": os.getpid(), "tmp": str(Path(tmp).resolve()), "output": str(Path(path).resolve())}
                marker.with_suffix(".part").write_text(json.dumps(held))
                os.replace(marker.with_suffix(".part"), marker)
                time.sleep(3600)  # until the test's SIGKILL

    # Modules that import atomic_path later (`from .io import atomic_path`), and io's
    # own write_json and save_checkpoint, get the holding one.
    _io.atomic_path = _holding_atomic_path
