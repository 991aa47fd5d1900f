"""The Aegra adapter of Warrant's `Auth`, without a server: Aegra's flat run requests reach
Warrant's handlers in langgraph-api's shape, server keys are refused, and a resume caller may
only nudge its own approval's thread."""

from __future__ import annotations

import pytest
from langgraph_sdk import Auth
from langgraph_sdk.auth.types import AuthContext

from deploy.aegra_auth import (
    RESUME_PERMISSION,
    authorize,
    authorize_run,
    resume_of,
    run_request_kwargs,
)


class FakeUser:
    """What Aegra hands the handlers: an object with attributes (extras included)."""

    def __init__(self, identity: str, permissions=(), **extra) -> None:
        self.identity = identity
        self.is_authenticated = True
        self.permissions = list(permissions)
        self.display_name = identity
        for key, value in extra.items():
            setattr(self, key, value)


def _ctx(user: FakeUser, resource: str = "threads", action: str = "create_run") -> AuthContext:
    return AuthContext(
        user=user,  # type: ignore[arg-type]
        resource=resource,  # type: ignore[arg-type]
        action=action,  # type: ignore[arg-type]
        permissions=user.permissions,
    )


def test_run_requests_are_shaped_as_langgraph_api_shapes_them() -> None:
    kwargs = run_request_kwargs(
        {
            "input": {"messages": []},
            "command": {"resume": 1},
            "config": {"configurable": {"user_id": "u1"}},
            "checkpoint": {"checkpoint_id": "c1", "checkpoint_ns": None},
        }
    )
    assert kwargs["config"]["configurable"] == {"user_id": "u1", "checkpoint_id": "c1"}
    # Aegra turns `configurable` into the context when none is given.
    assert kwargs["context"] == {"user_id": "u1"}
    assert kwargs["command"] == {"resume": 1}


@pytest.mark.parametrize(
    "value",
    [
        {"config": {"configurable": {"langgraph_auth_user": {"identity": "bob"}}}},
        {"context": {"langgraph_auth_user_id": "bob"}},
        {"config": {"configurable": {"run_id": "r"}}},
        {"config": {"configurable": ["not", "an", "object"]}},
        {"command": {"goto": "tools"}},
        {"command": {"update": {"messages": []}}},
        {"checkpoint": {"checkpoint_id": "earlier"}},
        {"context": {"subject_token": "stolen"}},
        {"context": {"user_id": "someone-else"}},
    ],
)
async def test_run_requests_that_would_steer_or_impersonate_are_refused(value) -> None:
    with pytest.raises(Auth.exceptions.HTTPException) as refused:
        await authorize_run(_ctx(FakeUser("alice")), {"assistant_id": "agent", **value})
    assert refused.value.status_code == 403


async def test_a_plain_run_and_a_restated_identity_pass() -> None:
    ctx = _ctx(FakeUser("alice"))
    hello = {"messages": [{"role": "user", "content": "hi"}]}
    await authorize_run(ctx, {"assistant_id": "agent", "input": hello})
    await authorize_run(ctx, {"assistant_id": "agent", "context": {"user_id": "alice"}})


async def test_a_resume_caller_only_nudges_its_own_approvals_thread() -> None:
    user = FakeUser(
        "alice",
        [RESUME_PERMISSION],
        warrant_resume={"approval_id": "a1", "thread_id": "t1"},
    )
    assert resume_of(user) == {"approval_id": "a1", "thread_id": "t1"}
    assert resume_of(FakeUser("alice", warrant_resume={"approval_id": "a1"})) is None
    nudge = {"command": {"resume": {"wake": True, "approval_id": "a1"}}}
    await authorize_run(_ctx(user), {**nudge, "thread_id": "t1"})
    assert await authorize(_ctx(user, "threads", "read"), {"thread_id": "t1"}) is None
    refused = [
        (_ctx(user), {**nudge, "thread_id": "t2"}),
        (
            _ctx(user),
            {"command": {"resume": {"wake": True, "approval_id": "a2"}}, "thread_id": "t1"},
        ),
        (_ctx(user), {**nudge, "thread_id": "t1", "input": {"messages": [1]}}),
        (_ctx(user), {"command": {"resume": "approved"}, "thread_id": "t1"}),
        (_ctx(user, "threads", "search"), {}),
        (_ctx(user, "threads", "create"), {}),
        (_ctx(user, "threads", "read"), {"thread_id": "t2"}),
    ]
    for ctx, value in refused:
        with pytest.raises(Auth.exceptions.HTTPException) as answer:
            await authorize(ctx, value)
        assert answer.value.status_code == 403, (ctx.resource, ctx.action, value)


async def test_authenticate_injects_what_warrants_handler_asks_for_by_name() -> None:
    from deploy.aegra_auth import _injected

    seen: dict[str, object] = {}

    async def wants_scope(scope):
        seen["scope"] = scope

    async def wants_both(authorization, headers):
        seen["pair"] = (authorization, headers)

    lowered = {"authorization": "Bearer abc", "x-auth-scheme": "x"}
    await wants_scope(**_injected(wants_scope, lowered, "Bearer abc"))
    assert seen["scope"] == {
        "type": "http",
        "headers": [(b"authorization", b"Bearer abc"), (b"x-auth-scheme", b"x")],
    }
    await wants_both(**_injected(wants_both, lowered, "Bearer abc"))
    assert seen["pair"] == ("Bearer abc", {b"authorization": b"Bearer abc", b"x-auth-scheme": b"x"})


def test_a_handler_needing_what_aegra_omits_is_a_401_not_a_crash() -> None:
    from deploy.aegra_auth import _injected

    async def wants_body(body):
        return None

    with pytest.raises(Auth.exceptions.HTTPException) as caught:
        _injected(wants_body, {}, None)
    assert caught.value.status_code == 401 and "body" in str(caught.value.detail)


async def test_warrants_own_authenticate_runs_through_the_adapter() -> None:
    from deploy.aegra_auth import authenticate

    # No bearer token: Warrant's handler (reached with the rebuilt scope) refuses with a 401.
    with pytest.raises(Auth.exceptions.HTTPException) as caught:
        await authenticate({"accept": "application/json"})
    assert caught.value.status_code == 401
