"""OpenFGA's reference test data, vendored unchanged (see openfga/README.md for provenance)."""

from __future__ import annotations

from pathlib import Path

OPENFGA_DATA = Path(__file__).resolve().parent / "openfga"
