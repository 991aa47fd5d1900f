"""Where OpenFGA's reference data lives: next to the checkout, or vendored into it."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve()
OPENFGA_DATA = next(
    (
        candidate
        for candidate in (_HERE.parents[3] / "shared/openfga", _HERE.parents[2] / "shared/openfga")
        if candidate.exists()
    ),
    _HERE.parents[3] / "shared/openfga",
)
