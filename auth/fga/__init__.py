"""Relationship-based authorization (OpenFGA): the client contract, the embedded engine, errors.

`make_fga_client(settings)` gives the configured client: `LocalFGA` (the embedded engine) or
`OpenFGA` (an OpenFGA server or Okta FGA through openfga-sdk); both speak `FGAClient`.
"""

from typing import TYPE_CHECKING, Any

from auth.fga.client import CheckRequest, CheckResult, FGAClient, TupleKey
from auth.fga.errors import ErrorCode, FGAError

if TYPE_CHECKING:
    from auth.fga.factory import make_fga_client
    from auth.fga.local import LocalFGA

__all__ = [
    "CheckRequest",
    "CheckResult",
    "ErrorCode",
    "FGAClient",
    "FGAError",
    "LocalFGA",
    "TupleKey",
    "make_fga_client",
]


def __getattr__(name: str) -> Any:
    # the engine and the SDK load on first use, not with `auth.fga.client` (CLI start-up)
    if name == "LocalFGA":
        from auth.fga.local import LocalFGA

        return LocalFGA
    if name == "make_fga_client":
        from auth.fga.factory import make_fga_client

        return make_fga_client
    raise AttributeError(f"module 'auth.fga' has no attribute {name!r}")
