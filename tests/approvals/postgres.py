"""The PostgreSQL the approvals tests run against (127.0.0.1:5432, database `test`); a test
skips, saying so, when none answers."""

from __future__ import annotations

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=2):
            return True
    except Exception:
        return False
