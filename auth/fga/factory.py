"""Choose the FGA backend from settings: the embedded engine, or an OpenFGA server / Okta FGA.

Switching is configuration only (`WARRANT_FGA_BACKEND`), never a code change.
"""

from __future__ import annotations

from typing import Any

from auth.fga.client import FGAClient


def make_fga_client(settings: Any = None) -> FGAClient:
    """`LocalFGA` over the SQLite store in the data dir ("local"), or `OpenFGA` ("openfga").

    Raises ValueError with a message naming the missing setting when the configuration is
    incomplete (for example no store id for an OpenFGA server).
    """
    if settings is None:
        from settings import get_settings

        settings = get_settings()
    backend = settings.fga_backend
    if backend == "local":
        from auth.fga.local import LocalFGA

        return LocalFGA.open(settings.path("fga.sqlite3"))
    if backend == "openfga":
        from auth.fga.openfga_client import OpenFGA

        return OpenFGA.from_settings(settings)
    raise ValueError(f"unknown FGA backend {backend!r}: use 'local' or 'openfga'")
