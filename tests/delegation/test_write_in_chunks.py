"""Tuples written in requests OpenFGA accepts: at most 100 per request, every delete before any
write (a delegation is re-granted by deleting the old tuple, then writing the new one)."""

from __future__ import annotations

from collections.abc import Sequence

from auth.fga.client import WRITE_LIMIT, TupleKey, write_in_chunks


class Recording:
    def __init__(self) -> None:
        self.requests: list[tuple[str, int]] = []

    async def write(
        self, writes: Sequence[TupleKey] = (), deletes: Sequence[TupleKey] = ()
    ) -> None:
        assert not (writes and deletes)
        self.requests.append(("delete", len(deletes)) if deletes else ("write", len(writes)))


def _tuples(n: int) -> list[TupleKey]:
    return [TupleKey("agent:a/alice", "delegate", f"doc:{i}") for i in range(n)]


async def test_deletes_then_writes_in_requests_of_at_most_the_limit() -> None:
    fga = Recording()
    await write_in_chunks(fga, writes=_tuples(150), deletes=_tuples(201))  # type: ignore[arg-type]
    assert WRITE_LIMIT == 100
    assert fga.requests == [
        ("delete", 100),
        ("delete", 100),
        ("delete", 1),
        ("write", 100),
        ("write", 50),
    ]


async def test_nothing_to_write_sends_nothing() -> None:
    fga = Recording()
    await write_in_chunks(fga)  # type: ignore[arg-type]
    assert fga.requests == []
