"""Resumers: what wakes a thread that waits for an approval. They nudge; they never decide.

Only the `approval` node redeems a CIBA grant (polls the token endpoint), so that the tokens
never have to travel: a resumer just resumes the thread with `{"wake": True}` and the node asks
the provider itself. Three ways to wake a thread:
- the ping callback (`graph/callbacks.py`): the provider says a decision is ready;
- `ApprovalPoller`: for poll-only providers (Auth0), it reads the ledger's due requests (never
  by scanning threads), each at its own interval, and resumes their threads; it runs with the
  server (the HTTP app's lifespan) or as `warrant resumer`;
- `resume_when_approved(graph, config)`: plain Python, one thread, until it stops waiting.

How a thread is resumed is pluggable (`Resumer`): through the LangGraph server's in-process
SDK client (`SDKResumer`, concurrent duplicates rejected by `multitask_strategy="reject"`), a
compiled graph with its checkpointer (`GraphResumer`, the in-process demo and tests), or the
production server's own API (`deploy/server_resumer.py`, set by `warrant serve`).

Several processes may share one ledger: a wake first claims its approval and the poller claims
each due request for its interval (`auth/approvals_claims.py`), so a request is woken by one
process at a time, however many pings, replicas and pollers there are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Any, Protocol

import httpx
from langgraph.types import Command

from auth.approvals import delivery_mode, get_ledger
from auth.approvals_claims import claims_for
from auth.approvals_ledger import ApprovalRecord, ApprovalsLedger, ApprovalStatus
from graph.context import Context
from settings import get_settings

log = logging.getLogger(__name__)

WAKE: dict[str, Any] = {"wake": True}  # the resume value: a nudge, carries no decision
GRAPH_ID = "agent"
# A request the poller could not wake for this long after its expiry is given up on.
GIVE_UP_AFTER_EXPIRY_SECONDS = 60.0
PING_GRACE_SECONDS = 5.0
# How long a wake may hold its approval before another process may wake it (a process that
# died holding it); a live waker releases it as soon as its resume returns.
WAKE_LEASE_SECONDS = 60.0
# A ping that arrived while its thread was being woken is served by the waker, this many times.
REWAKES = 3
POLL_CLAIM = "poll:"  # the poller's per-interval claim, apart from the wake claim


class ResumeResult(StrEnum):
    """What became of one attempt to wake a thread."""

    RESUMED = "resumed"  # a run was started (or, in-process, ran)
    BUSY = "busy"  # the thread is running right now (a duplicate, or the first run not paused)
    GONE = "gone"  # no such thread, or it no longer waits
    FAILED = "failed"  # the server could not be reached or refused


class Resumer(Protocol):
    """Wakes the thread a ledger record belongs to."""

    async def resume(self, record: ApprovalRecord) -> ResumeResult: ...


class SDKResumer:
    """Resume through the LangGraph server's API (in-process inside the server: no URL)."""

    def __init__(
        self, client: Any = None, *, url: str | None = None, assistant_id: str = GRAPH_ID
    ) -> None:
        self._client = client
        self._url = url
        self.assistant_id = assistant_id

    def _get(self) -> Any:
        if self._client is None:
            from langgraph_sdk import get_client

            self._client = get_client(url=self._url) if self._url else get_client()
        return self._client

    async def resume(self, record: ApprovalRecord) -> ResumeResult:
        try:
            await self._get().runs.create(
                record.thread_id,
                self.assistant_id,
                command={"resume": {**WAKE, "approval_id": record.id}},
                multitask_strategy="reject",
            )
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            if status == 409:
                return ResumeResult.BUSY
            if status in (404, 422):
                return ResumeResult.GONE
            log.warning("resume of approval %s refused: HTTP %s", record.id, status)
            return ResumeResult.FAILED
        except httpx.HTTPError as exc:
            log.warning("resume of approval %s failed: %s", record.id, type(exc).__name__)
            return ResumeResult.FAILED
        return ResumeResult.RESUMED


class GraphResumer:
    """Resume a compiled graph directly (plain Python, the in-process demo, tests).

    `context` is the runtime context for the resumed run (a function of the record, or a
    fixed value); by default it names the record's user and carries no token (a callback
    resume has none), and the node uses the approval's own token.
    """

    def __init__(
        self,
        graph: Any,
        *,
        context: Any | Callable[[ApprovalRecord], Any] = None,
    ) -> None:
        self.graph = graph
        self._context = context
        self._running: set[str] = set()
        self.results: list[dict[str, Any]] = []  # outputs of the resumed runs (tests, demo)

    async def resume(self, record: ApprovalRecord) -> ResumeResult:
        if record.thread_id in self._running:
            return ResumeResult.BUSY  # as the server's multitask_strategy="reject"
        config = {"configurable": {"thread_id": record.thread_id}}
        self._running.add(record.thread_id)
        try:
            snapshot = await self.graph.aget_state(config)
            if not snapshot.interrupts:
                # Steps still to run and no interrupt: the run that pushed the request has not
                # paused yet (a fast ping); nothing left: the thread no longer waits.
                return ResumeResult.BUSY if snapshot.next else ResumeResult.GONE
            context = self._context(record) if callable(self._context) else self._context
            if context is None:
                # The approval's own user, from the ledger (never a token): the node refuses a
                # plain-Python run that names nobody.
                context = Context(user_id=record.user_id)
            output = await self.graph.ainvoke(Command(resume=WAKE), config, context=context)
            self.results.append(output)
            return ResumeResult.RESUMED
        finally:
            self._running.discard(record.thread_id)


class CallbackResumer:
    """Wake a thread on a LangGraph server from outside it (`warrant resumer`): POST the
    server's own ping callback with the request's notification token, which this process can
    compute because it shares the server's key. No user token is needed: the server's callback
    route resumes the thread in-process, and the node asks the provider."""

    def __init__(self, server_url: str, *, http: httpx.AsyncClient | None = None) -> None:
        from graph.callbacks import CALLBACK_PATH

        self.url = server_url.rstrip("/") + CALLBACK_PATH
        self._http = http

    async def resume(self, record: ApprovalRecord) -> ResumeResult:
        from auth.approvals import notification_token

        if record.auth_req_id is None:
            return ResumeResult.GONE
        headers = {"Authorization": f"Bearer {notification_token(record.id)}"}
        body = {"auth_req_id": record.auth_req_id}
        try:
            if self._http is not None:
                response = await self._http.post(self.url, json=body, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=10.0) as http:
                    response = await http.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning(
                "waking approval %s via the server failed: %s", record.id, type(exc).__name__
            )
            return ResumeResult.FAILED
        if response.status_code == 204:
            return ResumeResult.RESUMED
        if response.status_code == 404:
            return ResumeResult.GONE
        log.warning(
            "the server refused to wake approval %s: HTTP %s", record.id, response.status_code
        )
        return ResumeResult.FAILED


_resumer: Resumer | None = None


def set_resumer(resumer: Resumer | None) -> None:
    """Choose how this process wakes threads (None: the LangGraph server's SDK client)."""
    global _resumer
    _resumer = resumer


def get_resumer() -> Resumer:
    """The process's resumer: the one set, else the in-process LangGraph SDK client."""
    global _resumer
    if _resumer is None:
        _resumer = SDKResumer()
    return _resumer


async def _wake_once(
    record: ApprovalRecord,
    resumer: Resumer,
    ledger: ApprovalsLedger,
    attempts: int,
    delay: float,
) -> ResumeResult:
    result = ResumeResult.FAILED
    for attempt in range(attempts):
        result = await resumer.resume(record)
        if result is not ResumeResult.BUSY:
            return result
        await asyncio.sleep(min(delay * (2**attempt), 2.0))
        current = await ledger.get(record.id)
        if current is None or current.status is not ApprovalStatus.PENDING:
            return result  # someone else's run settled it
    return result


async def wake(
    record: ApprovalRecord,
    resumer: Resumer | None = None,
    *,
    ledger: ApprovalsLedger | None = None,
    attempts: int = 20,
    delay: float = 0.1,
) -> ResumeResult:
    """Resume the record's thread, retrying while it is busy (a ping can arrive before the run
    that pushed the request has paused), until the record stops being pending.

    Only the caller that claims the approval (`auth/approvals_claims.py`) wakes it: a second
    ping, here or in another server process, returns BUSY at once. A ping that arrives while
    the claim is held has marked the request due; the holder sees that after its resume and
    wakes the thread again, so no ping is lost to the claim.
    """
    resumer = resumer or get_resumer()
    ledger = ledger or await get_ledger()
    claims = claims_for(ledger)
    result = ResumeResult.BUSY
    for _ in range(REWAKES):
        if not await claims.claim(record.id, WAKE_LEASE_SECONDS):
            return result
        try:
            before = await ledger.get(record.id)
            marked = before.next_poll_at if before is not None else None
            result = await _wake_once(record, resumer, ledger, attempts, delay)
        finally:
            await claims.release(record.id)
        current = await ledger.get(record.id)
        if (
            result is not ResumeResult.RESUMED
            or current is None
            or current.status is not ApprovalStatus.PENDING
            or current.next_poll_at == marked  # no new mark: nothing arrived meanwhile
            or (current.next_poll_at or 0.0) > time.time()
        ):
            return result
        record = current  # marked due again while we held it: a ping we must not drop
    return result


class ApprovalPoller:
    """Wakes the threads of pending requests when their interval has elapsed (poll mode),
    reading the ledger's work list; a thread the ping already woke is simply not due."""

    def __init__(
        self,
        resumer: Resumer | None = None,
        *,
        ledger: ApprovalsLedger | Callable[[], ApprovalsLedger] | None = None,
        tick: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._resumer = resumer
        self._ledger = ledger
        self.tick = tick
        self._clock = clock
        self.wakes = 0  # resumes started (benchmarks, tests)

    async def _get_ledger(self) -> ApprovalsLedger:
        if isinstance(self._ledger, ApprovalsLedger):
            return self._ledger
        return self._ledger() if callable(self._ledger) else await get_ledger()

    async def _one(self, ledger: ApprovalsLedger, record: ApprovalRecord, now: float) -> None:
        resumer = self._resumer or get_resumer()
        if isinstance(resumer, CallbackResumer):
            result = await resumer.resume(record)  # the server's callback takes the wake claim
        else:  # wake here, under the same claim as a ping's wake: never both at once
            result = await wake(record, resumer, ledger=ledger, attempts=1)
        if result is ResumeResult.RESUMED:
            self.wakes += 1
        elif result is ResumeResult.GONE or (
            result in (ResumeResult.FAILED, ResumeResult.BUSY)
            and record.expires_at is not None
            and now > record.expires_at + GIVE_UP_AFTER_EXPIRY_SECONDS
        ):
            # Nobody can answer it any more: close it, so it leaves the work list.
            final = ApprovalStatus.EXPIRED if record.expired_at(now) else ApprovalStatus.FAILED
            await ledger.transition(
                record.id, final, expected=ApprovalStatus.PENDING, outcome=f"thread {result}"
            )

    async def run_once(self) -> int:
        """Wake every due request once; the number of wake attempts made."""
        ledger = await self._get_ledger()
        now = self._clock()
        # In ping mode a ping marks its request due and wakes the thread itself: the poller
        # only steps in when that has not happened for a while (a lost ping, a failed wake).
        cutoff = now - (PING_GRACE_SECONDS if delivery_mode() == "ping" else 0.0)
        # Each due request is taken by one process (of all that share the ledger) for its
        # interval: not woken again before then, whatever the thread does with this wake.
        due = await claims_for(ledger).claim_due(
            cutoff, lambda record: max(record.poll_interval, 1.0), prefix=POLL_CLAIM
        )
        results = await asyncio.gather(
            *(self._one(ledger, r, now) for r in due), return_exceptions=True
        )
        for record, outcome in zip(due, results, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("waking approval %s failed: %s", record.id, type(outcome).__name__)
        return len(due)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Poll the ledger every `tick` seconds until `stop` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # a ledger hiccup must not end the poller
                log.warning("approval poller: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick)


@contextlib.asynccontextmanager
async def poller_lifespan(app: Any = None) -> AsyncIterator[None]:
    """Run an `ApprovalPoller` for as long as the server runs (when `resumer_enabled`)."""
    if not get_settings().resumer_enabled:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(ApprovalPoller().run(stop), name="warrant-approval-poller")
    log.info("approval poller started")
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _waiting_approval(snapshot: Any) -> str | None:
    for item in getattr(snapshot, "interrupts", ()) or ():
        value = getattr(item, "value", None)
        if isinstance(value, dict) and value.get("type") == "approval_pending":
            return str(value.get("approval_id"))
    return None


async def resume_when_approved(
    graph: Any,
    config: dict[str, Any],
    *,
    context: Any = None,
    timeout: float = 300.0,  # noqa: ASYNC109 (the documented signature)
    ledger: ApprovalsLedger | None = None,
) -> dict[str, Any]:
    """Plain Python: keep resuming a thread that waits for an approval, at the provider's
    interval, until it no longer waits for one; returns the last run's output.

    The resumes are nudges: whether the action runs is what the provider says to the node.
    Raises `TimeoutError` when the thread still waits after `timeout` seconds.
    """
    ledger = ledger or await get_ledger()
    deadline = time.monotonic() + timeout
    output: dict[str, Any] = {}
    while True:
        snapshot = await graph.aget_state(config)
        approval_id = _waiting_approval(snapshot)
        if approval_id is None:
            return output or dict(snapshot.values)
        record = await ledger.get(approval_id)
        if record is not None and record.status is ApprovalStatus.PENDING:
            wait = (record.next_poll_at or 0.0) - time.time()
            if wait > 0:
                if time.monotonic() + wait > deadline:
                    raise TimeoutError(f"the approval {approval_id} is still pending")
                await asyncio.sleep(wait)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the approval {approval_id} is still pending")
        output = await graph.ainvoke(Command(resume=WAKE), config, context=context)
