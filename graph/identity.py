"""Who the graph acts for: the caller of this run, and the user recorded in the thread.

The caller comes from the LangGraph server's auth (`configurable.langgraph_auth_user`, set from
the validated JWT) or, in plain Python, from the runtime context. The first run of a thread
records the caller in state; every later step acts for that recorded user. A resume with no
caller (a callback, a resumer) acts for the recorded user; a different caller is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

import auth.credentials
from auth.errors import NotAuthorized
from graph.context import Context
from graph.state import ActingUser, State

_SERVER_USER = "langgraph_auth_user"
_SERVER_USER_ID = "langgraph_auth_user_id"


class IdentityMismatch(NotAuthorized):
    """Someone other than the thread's recorded user tried to continue it."""

    def __init__(self) -> None:
        super().__init__(
            "This conversation belongs to another user; it cannot be continued by you."
        )


class NoIdentity(NotAuthorized):
    """The run has no signed-in user and the thread records none: nothing may act."""

    def __init__(self) -> None:
        super().__init__(
            "No signed-in user: Warrant acts only for an authenticated user (log in first)."
        )


def _field(user: Any, name: str) -> Any:
    """Read `name` from a server user object (attribute or mapping access, as langgraph allows)."""
    if isinstance(user, Mapping):
        return user.get(name)
    try:
        return user[name]
    except (KeyError, TypeError, IndexError, AttributeError, NotImplementedError):
        pass
    try:
        return getattr(user, name, None)
    except NotImplementedError:
        return None


def _server_user(config: RunnableConfig | None, runtime: Runtime[Any] | None) -> Any:
    configurable = (config or {}).get("configurable") or {}
    user = configurable.get(_SERVER_USER)
    if user is None and runtime is not None and runtime.server_info is not None:
        user = runtime.server_info.user
    return user


def caller_identity(
    config: RunnableConfig | None, runtime: Runtime[Context] | None
) -> ActingUser | None:
    """The identity calling this run, or None when the run carries none (callback, resumer)."""
    context = runtime.context if runtime is not None else None
    server_user = _server_user(config, runtime)
    if server_user is not None:
        configurable = (config or {}).get("configurable") or {}
        sub = _field(server_user, "identity") or configurable.get(_SERVER_USER_ID)
        if not isinstance(sub, str) or not sub:
            raise NoIdentity()
        email = _field(server_user, "email")
        # On the server the auth user is the truth; a context naming someone else is a forgery.
        if isinstance(context, Context) and context.user_id and context.user_id != sub:
            raise IdentityMismatch()
        return ActingUser(sub=sub, email=email if isinstance(email, str) and email else None)
    if isinstance(context, Context) and context.user_id:
        return ActingUser(sub=context.user_id, email=context.user_email or None)
    return None


def acting_user(
    state: State, config: RunnableConfig | None, runtime: Runtime[Context] | None
) -> ActingUser:
    """The recorded user this step acts for; refuses a different caller and an empty record.

    Every node that acts (tools, approval, retrieve) calls this first: a resume re-enters the
    interrupted node directly, without passing the `identity` node again.
    """
    recorded = state.get("user")
    caller = caller_identity(config, runtime)
    if not recorded or not recorded.get("sub"):
        raise NoIdentity()
    if caller is not None and caller["sub"] != recorded["sub"]:
        raise IdentityMismatch()
    return recorded


def subject_token_for(user: ActingUser, runtime: Runtime[Context] | None) -> tuple[str, str] | None:
    """The acting user's own token and its type, for a Token Vault exchange; None if absent.

    From the runtime context (plain Python) when it names that user, else from the
    server-side credential store that the server's `authenticate` handler fills.
    """
    context = runtime.context if runtime is not None else None
    if isinstance(context, Context) and context.subject_token and context.user_id == user["sub"]:
        return context.subject_token, context.subject_token_type
    token = auth.credentials.get(user["sub"])
    if token:
        from auth.token_vault import SUBJECT_TOKEN_TYPE_ACCESS

        return token, SUBJECT_TOKEN_TYPE_ACCESS
    return None
