"""Relationship-based authorization (OpenFGA): the client contract, the embedded engine, errors.

`make_fga_client(settings)` gives the configured client: `LocalFGA` (the embedded engine) or
`OpenFGA` (an OpenFGA server or Okta FGA through openfga-sdk); both speak `FGAClient`.
"""

from auth.fga.client import CheckRequest, CheckResult, FGAClient, TupleKey
from auth.fga.errors import ErrorCode, FGAError
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
