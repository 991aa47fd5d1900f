"""A devstack of this package's own (real loopback ports), so that the CLI and browser tests never
leave approval requests in the session devstack other suites wait on."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator

import pytest

from devstack.server import DevStack
from settings import get_settings


def run(coro):
    """Run a coroutine to completion from sync code (a thread of its own: no loop clash)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def ciba_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    data_dir = tmp_path_factory.mktemp("ciba-devstack")
    with DevStack(get_settings(), ephemeral=True, data_dir=data_dir) as stack:
        yield stack
