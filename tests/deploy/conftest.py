"""PostgreSQL for the deployment tests: a fresh `warrant_<random>` database per test session
(dropped at the end), or a skip that says why when no PostgreSQL is reachable.

`WARRANT_TEST_POSTGRES` names an admin connection (default: the local server's `test`
database, trust auth). The load harness is `benchmarks/replicas.py`, shared with the benchmark.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import replicas  # noqa: E402  (benchmarks/replicas.py: the load harness)

ADMIN_URL = os.environ.get("WARRANT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """An admin URL for a reachable PostgreSQL (skips, saying why, when there is none)."""
    why = replicas.postgres_reachable(ADMIN_URL)
    if why:
        pytest.skip(why)
    return ADMIN_URL


@pytest.fixture(scope="session")
def pg_database(pg_admin: str) -> Iterator[str]:
    """A fresh database for this test session; dropped at the end."""
    with replicas.fresh_database(pg_admin) as url:
        yield url
