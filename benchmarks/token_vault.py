"""Benchmark: what the Token Vault adds to a GitHub tool call, and how often it exchanges.

Against the devstack (local identity provider and local GitHub on loopback, real HTTP):
- `fixed_token`: `search_github_repositories` called with one GitHub token held fixed (the
  insecure way: a stored personal access token), the floor;
- `vault_cached`: the same call, each one getting its token from `TokenVault.get_token` first
  (as the `tools` node does), after one warm-up exchange;
- `vault_get_token`: `get_token` alone on a warm cache (the vault's own cost);
- `first_exchange`: one exchange at the provider with an empty cache (connected account).
The ratio `vault_cached / fixed_token` is the overhead (noisy on a shared machine: both kinds
take tens of milliseconds of HTTP), and `1 + get_token / call` is the same overhead computed from
the cached lookup alone; exchanges are counted at the provider (per 100 tool calls). The two call
kinds alternate in rounds so that drift hits both alike.

Run: `python benchmarks/token_vault.py [--calls 200]`; writes benchmarks/results/token_vault.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from _common import jwt_subject, latency_stats, prepare_environment, write_results

# The local GitHub's search limit (30 a minute, as GitHub's) would stop a benchmark.
prepare_environment(WARRANT_DEVSTACK_GITHUB_SEARCH_RATE_LIMIT="1000000")

QUERIES = ["ai", "agent stars:>100", "database language:rust", "cli", "kubernetes", "rag"]


async def run(calls: int) -> dict[str, Any]:
    from auth.token_vault import SUBJECT_TOKEN_TYPE_ACCESS, TokenVault
    from devstack.identity.autologin import login
    from devstack.identity.connected_accounts import connect_in_browser
    from devstack.server import DevStack
    from settings import get_settings
    from tools.base import ToolCredentials, credentials_scope
    from tools.github import GITHUB_CONNECTION, GITHUB_SEARCH_SCOPES, search_github_repositories

    with (
        DevStack(get_settings(), ephemeral=True) as stack,
        get_settings.override(**stack.overrides) as s,
    ):
        password = s.alice_password.get_secret_value()
        tokens = await login(
            stack.issuer,
            "alice@example.com",
            password,
            client_id=s.cli_client_id,
            audience=s.audience,
        )
        vault = TokenVault(
            s.issuer_url, s.agent_client_id, s.agent_client_secret.get_secret_value()
        )
        await connect_in_browser(
            vault.connect_url(GITHUB_CONNECTION, GITHUB_SEARCH_SCOPES),
            email="alice@example.com",
            password=password,
            github_login="alice",
            github_password=password,
        )
        exchange = stack.provider.extensions["token_vault"]
        user_id = jwt_subject(tokens.access_token)
        args = {
            "user_id": user_id,
            "subject_token": tokens.access_token,
            "subject_token_type": SUBJECT_TOKEN_TYPE_ACCESS,
            "connection": GITHUB_CONNECTION,
            "scopes": GITHUB_SEARCH_SCOPES,
        }
        started = time.perf_counter()
        fixed = (await vault.get_token(**args)).access_token
        first_exchange = time.perf_counter() - started
        exchanges_before = exchange.exchanges[user_id]

        async def fixed_call(query: str) -> None:
            with credentials_scope(ToolCredentials({GITHUB_CONNECTION: fixed}, user_id=user_id)):
                result = await search_github_repositories.ainvoke({"query": query})
            assert '"repositories"' in result, result

        async def vault_call(query: str) -> None:
            token = await vault.get_token(**args)
            with credentials_scope(
                ToolCredentials({GITHUB_CONNECTION: token.access_token}, user_id=user_id)
            ):
                result = await search_github_repositories.ainvoke({"query": query})
            assert '"repositories"' in result, result

        for query in QUERIES:  # warm both paths (imports, connections, caches)
            await fixed_call(query)
            await vault_call(query)
        fixed_samples: list[float] = []
        vault_samples: list[float] = []
        for i in range(calls):
            query = QUERIES[i % len(QUERIES)]
            order = [(fixed_call, fixed_samples), (vault_call, vault_samples)]
            for call, samples in order if i % 2 == 0 else reversed(order):
                t0 = time.perf_counter()
                await call(query)
                samples.append(time.perf_counter() - t0)
        exchanges = exchange.exchanges[user_id] - exchanges_before
        exchanges_total = exchange.exchanges[user_id]  # the first exchange included
        vault_calls_total = 1 + len(QUERIES) + calls

        get_token_samples = []
        for _ in range(2000):
            t0 = time.perf_counter()
            await vault.get_token(**args)
            get_token_samples.append(time.perf_counter() - t0)

    fixed_stats, vault_stats = (
        latency_stats(fixed_samples, digits=4),
        latency_stats(vault_samples, digits=4),
    )
    return {
        "benchmark": "token_vault",
        "calls_per_kind": calls,
        "fixed_token": fixed_stats,
        "vault_cached": vault_stats,
        "overhead_ratio_mean": round(vault_stats["mean_ms"] / fixed_stats["mean_ms"], 4),
        "overhead_ratio_median": round(vault_stats["median_ms"] / fixed_stats["median_ms"], 4),
        "vault_get_token_cached_us": round(statistics.median(get_token_samples) * 1e6, 2),
        "first_exchange_ms": round(first_exchange * 1000, 3),
        "exchanges_during_calls": exchanges,
        "exchanges_per_100_calls": round(100 * exchanges / calls, 3),
        "exchanges_per_100_calls_including_first": round(
            100 * exchanges_total / vault_calls_total, 3
        ),
        # The cached lookup's own cost against the median call: free of run-to-run noise.
        "overhead_ratio_get_token_vs_call": round(
            1 + statistics.median(get_token_samples) / statistics.median(fixed_samples), 6
        ),
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    ns = parser.parse_args()
    result = asyncio.run(run(ns.calls))
    write_results("token_vault", result)
    print(json.dumps(result, indent=2))
    print(
        f"\nvault overhead on a tool call: x{result['overhead_ratio_mean']} (mean), "
        f"x{result['overhead_ratio_median']} (median); cached get_token "
        f"{result['vault_get_token_cached_us']} us; "
        f"{result['exchanges_per_100_calls']} exchanges per 100 calls"
    )


if __name__ == "__main__":
    main()
