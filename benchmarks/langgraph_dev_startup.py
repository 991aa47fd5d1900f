"""Benchmark: how long `langgraph dev` (offline, Warrant's auth) takes to answer `/ok`, and what
the first authenticated request costs after that (it fetches discovery and the JWKS once).

Each round starts a fresh server in a fresh folder against one devstack provider and measures:
- `ok_seconds`: process start until `/ok` answers 200;
- `first_auth_ms`: the first `POST /threads/search` with alice's bearer token (cold key cache);
- `warm_auth_ms`: the median of 20 more (validation with cached keys).
The ratio `first_auth_ms / warm_auth_ms` is what the first token costs over a warm one.

Run: `python benchmarks/langgraph_dev_startup.py [--rounds 3]`;
writes benchmarks/results/langgraph_dev_startup.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from _common import prepare_environment, write_results

prepare_environment()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import httpx

    from devstack.server import DevStack
    from settings import get_settings
    from tests.fixtures.devstack import login_sync
    from tests.server.conftest import run_langgraph_dev

    rounds = []
    with DevStack(get_settings(), ephemeral=True, data_dir=Path(tempfile.mkdtemp())) as stack:
        token = login_sync(stack, "alice").access_token
        headers = {"Authorization": f"Bearer {token}"}
        for i in range(args.rounds):
            folder = Path(tempfile.mkdtemp(prefix=f"langgraph-dev-{i}-"))
            with run_langgraph_dev(stack, folder) as server, httpx.Client(timeout=10) as http:
                url = server.url + "/threads/search"
                start = time.perf_counter()
                assert http.post(url, json={}, headers=headers).status_code == 200
                first = (time.perf_counter() - start) * 1000
                warm = []
                for _ in range(20):
                    start = time.perf_counter()
                    assert http.post(url, json={}, headers=headers).status_code == 200
                    warm.append((time.perf_counter() - start) * 1000)
                rounds.append(
                    {
                        "ok_seconds": round(server.startup_seconds, 3),
                        "first_auth_ms": round(first, 2),
                        "warm_auth_ms": round(statistics.median(warm), 2),
                    }
                )
                print(f"round {i + 1}: {rounds[-1]}")
    summary = {
        "rounds": rounds,
        "ok_seconds_median": statistics.median(r["ok_seconds"] for r in rounds),
        "first_auth_ms_median": statistics.median(r["first_auth_ms"] for r in rounds),
        "warm_auth_ms_median": statistics.median(r["warm_auth_ms"] for r in rounds),
    }
    summary["first_over_warm_ratio"] = round(
        summary["first_auth_ms_median"] / summary["warm_auth_ms_median"], 2
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}, indent=2))
    write_results("langgraph_dev_startup", summary)


if __name__ == "__main__":
    main()
