"""The one FGA question-asking interface, with two implementations chosen by settings.

`LocalFGA` answers with the embedded engine in-process; `OpenFGA` asks an OpenFGA server or
Okta FGA through `openfga-sdk`. Callers (the retriever, tools, the CLI) only see `FGAClient`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Consistency = Literal["MINIMIZE_LATENCY", "HIGHER_CONSISTENCY"]


@dataclass(frozen=True)
class TupleKey:
    """One relationship tuple: `user` is `type:id`, `type:*` or `type:id#relation`."""

    user: str
    relation: str
    object: str
    condition_name: str | None = None
    condition_context: dict[str, Any] | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class CheckRequest:
    """One question of a batch: may `user` have `relation` on `object`?"""

    user: str
    relation: str
    object: str
    contextual_tuples: tuple[TupleKey, ...] = ()
    context: dict[str, Any] | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class CheckResult:
    """The answer to one question; `error` set means the answer is unknown, which means no."""

    allowed: bool
    error: str | None = None


@runtime_checkable
class FGAClient(Protocol):
    """What every caller of FGA relies on; all methods are async and fail closed by raising."""

    async def check(
        self,
        user: str,
        relation: str,
        object: str,
        *,
        contextual_tuples: Sequence[TupleKey] = (),
        context: dict[str, Any] | None = None,
    ) -> bool: ...

    async def batch_check(self, checks: Sequence[CheckRequest]) -> list[CheckResult]: ...

    async def list_objects(
        self,
        user: str,
        relation: str,
        type: str,
        *,
        contextual_tuples: Sequence[TupleKey] = (),
        context: dict[str, Any] | None = None,
    ) -> list[str]: ...

    async def list_users(
        self,
        object: str,
        relation: str,
        user_filters: Sequence[str],
        *,
        contextual_tuples: Sequence[TupleKey] = (),
        context: dict[str, Any] | None = None,
    ) -> list[str]: ...

    async def read(
        self, user: str | None = None, relation: str | None = None, object: str | None = None
    ) -> list[TupleKey]: ...

    async def write(
        self, writes: Sequence[TupleKey] = (), deletes: Sequence[TupleKey] = ()
    ) -> None: ...

    async def close(self) -> None: ...


WRITE_LIMIT = 100  # tuples per write request: OpenFGA's limit, and the local client's


async def write_in_chunks(
    fga: FGAClient, *, writes: Sequence[TupleKey] = (), deletes: Sequence[TupleKey] = ()
) -> None:
    """All the deletes, then all the writes, in requests of at most `WRITE_LIMIT` tuples; each
    request is atomic, the whole is not."""
    for start in range(0, len(deletes), WRITE_LIMIT):
        await fga.write(deletes=deletes[start : start + WRITE_LIMIT])
    for start in range(0, len(writes), WRITE_LIMIT):
        await fga.write(writes=writes[start : start + WRITE_LIMIT])
