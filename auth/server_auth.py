"""The LangGraph server's `Auth` object: who is calling, and what each caller may touch.

`authenticate` validates the bearer JWT (auth/jwt.py) and returns the caller's identity: `sub`
as `identity`, email and scopes, never the token (langgraph-api stores the auth user with every
run in its data folder). The validated token goes to the in-process credential store instead,
where the graph finds it for the Token Vault.

Authorization denies by default. Threads, runs, assistants, crons and store items belong to
the user who created them (an `owner` metadata filter); the graph's own assistant is known by
its id, never by metadata a client can write. State edits (`threads.update` other than
cancelling a run, and runs that carry `Command(update=/goto=)` or start from an earlier
checkpoint) are refused, because a resume must never be steerable by editing state. What a
run, a cron or an assistant may carry into the graph (input, command, config, context) is
checked by `auth/server_requests.py`.

LangGraph Studio sends no token of the user's: its requests are only marked
`x-auth-scheme: langsmith`. They are refused unless `settings.studio_enabled` (local development
only); when enabled, Studio acts as `settings.studio_user`. With `"disable_studio_auth": true`
in langgraph.json those requests reach `authenticate` here, which returns the configured user
(so the graph records that identity too); without it, langgraph-api lets them in itself as a
`StudioUser` and the `@auth.on` handlers below map (or refuse) it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from langgraph_sdk import Auth
from langgraph_sdk.auth import is_studio_user

from auth import credentials
from auth.errors import InvalidToken, ProviderUnavailable
from auth.jwt import JWTValidator, expires_at, scopes
from auth.server_requests import (
    NotAllowed,
    RequestRefused,
    check_config,
    check_context,
    check_metadata,
    check_run_request,
)
from settings import get_settings

log = logging.getLogger(__name__)

auth = Auth()

OWNER = "owner"
_CHALLENGE = 'Bearer realm="warrant"'
_STUDIO_DISABLED = (
    "LangGraph Studio is disabled on this server (set WARRANT_STUDIO_ENABLED=true, for local "
    "development only)."
)
_validators: dict[tuple[str, str], JWTValidator] = {}


def validator() -> JWTValidator:
    """The process's validator for the configured issuer and audience (keys cached in it)."""
    settings = get_settings()
    key = (settings.issuer_url, settings.audience)
    found = _validators.get(key)
    if found is None:
        found = _validators[key] = JWTValidator.from_settings()
    return found


def _unauthorized(message: str, error: str = "invalid_token") -> Auth.exceptions.HTTPException:
    challenge = _CHALLENGE if error == "" else f'{_CHALLENGE}, error="{error}"'
    return Auth.exceptions.HTTPException(
        status_code=401, detail=message, headers={"WWW-Authenticate": challenge}
    )


def studio_user() -> Auth.types.MinimalUserDict:
    """The configured local user that LangGraph Studio acts as (when enabled)."""
    who = get_settings().studio_user
    return {
        "identity": who,
        "display_name": who,
        "email": who if "@" in who else "",
        "scopes": [],
        "permissions": ["authenticated", "studio"],
        "is_authenticated": True,
        "studio_session": True,
    }


def _header(headers: dict[bytes, bytes] | None, name: bytes) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    return value.decode("latin-1") if isinstance(value, bytes) else value


def authorization_header(raw_headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The request's one `Authorization` header as text; 401 for several, or for non-ASCII.

    Read from the raw ASGI header list: a mapping would keep only the last of several headers,
    and langgraph-api's own decoding fails on bytes that are not UTF-8.
    """
    values = [value for name, value in raw_headers if name.lower() == b"authorization"]
    if len(values) > 1:
        raise _unauthorized("Send exactly one Authorization header.", "invalid_request")
    if not values:
        return None
    try:
        return values[0].decode("ascii")
    except UnicodeDecodeError:
        raise _unauthorized(
            "The Authorization header must be plain ASCII (`Bearer <token>`).", "invalid_request"
        ) from None


@auth.authenticate
async def authenticate(scope: dict[str, Any]) -> Auth.types.MinimalUserDict:
    """The caller's identity from the request's bearer JWT; 401 for anything else."""
    raw = list(scope.get("headers") or [])
    authorization = authorization_header(raw)
    return await authenticate_request(authorization, dict(raw))


async def authenticate_request(
    authorization: str | None, headers: dict[bytes, bytes] | None = None
) -> Auth.types.MinimalUserDict:
    """The caller's identity from one `Authorization` value (and the other headers)."""
    if _header(headers, b"x-auth-scheme") == "langsmith" and not authorization:
        # Reached only with `disable_studio_auth: true` in langgraph.json (otherwise
        # langgraph-api answers Studio itself and the `@auth.on` handlers below decide).
        if not get_settings().studio_enabled:
            raise _unauthorized(_STUDIO_DISABLED)
        return studio_user()
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("A bearer token is required (log in with `warrant login`).", "")
    token = token.strip()
    try:
        claims = await validator().validate(token)
    except InvalidToken as exc:
        log.info("rejected a bearer token: %s", getattr(exc, "reason", "invalid"))
        raise _unauthorized(str(exc)) from None
    except ProviderUnavailable as exc:
        # Fail closed: no keys, no entry. langgraph-api only passes 401/403 through cleanly.
        log.warning("cannot validate bearer tokens: %s", exc.reason)
        raise _unauthorized(
            "The identity provider is unavailable; the token cannot be checked. Try again."
        ) from None
    except Exception as exc:  # a bug must not turn into a 500 with a stack trace, nor let in
        log.error("bearer token check failed unexpectedly: %s", type(exc).__name__)
        raise _unauthorized("The token could not be checked.") from None
    sub = str(claims["sub"])
    # The graph presents this token to the Token Vault; it stays in this process's memory.
    credentials.put(sub, token, expires_at(claims))
    email = claims.get("email") or claims.get(get_settings().email_claim)
    granted = scopes(claims)
    return {
        "identity": sub,
        "display_name": email if isinstance(email, str) and email else sub,
        "email": email if isinstance(email, str) else "",
        "scopes": granted,
        "permissions": ["authenticated", *granted],
        "is_authenticated": True,
    }


def owner_of(ctx: Auth.types.AuthContext) -> str:
    """The identity whose resources this request may see; 403 when there is none."""
    user = ctx.user
    if is_studio_user(user):
        if not get_settings().studio_enabled:
            raise Auth.exceptions.HTTPException(status_code=403, detail=_STUDIO_DISABLED)
        return get_settings().studio_user
    identity = getattr(user, "identity", None)
    if (
        not isinstance(identity, str)
        or not identity
        or not getattr(user, "is_authenticated", False)
    ):
        raise Auth.exceptions.HTTPException(status_code=403, detail="Not authenticated.")
    return identity


def _stamp_owner(value: dict[str, Any], owner: str) -> None:
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
        value["metadata"] = metadata
    # Whatever owner a client claims is overwritten: ownership comes from the token only.
    metadata[OWNER] = owner


def _forbidden(message: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(status_code=403, detail=message)


# Default: deny everything no handler below allows.
@auth.on
async def deny_by_default(ctx: Auth.types.AuthContext, value: Any) -> bool:
    raise _forbidden(f"'{ctx.resource}.{ctx.action}' is not allowed.")


# threads (and runs, which langgraph-api checks as threads) -------------------------------


@auth.on.threads.create
async def on_thread_create(
    ctx: Auth.types.AuthContext, value: Auth.types.on.threads.create.value
) -> Auth.types.FilterType:
    owner = owner_of(ctx)
    _stamp_owner(value, owner)
    return {OWNER: owner}


def _is_studio(ctx: Auth.types.AuthContext) -> bool:
    """A Studio request on a server where Studio is enabled (the developer's own machine)."""
    user = ctx.user
    # `studio_session` is set only by `studio_user()`, never from a token's claims or scopes.
    studio = is_studio_user(user) or getattr(user, "studio_session", False) is True
    return studio and get_settings().studio_enabled


@contextmanager
def _refusals_as_http() -> Iterator[None]:
    """A request check's refusal becomes the HTTP error langgraph-api sends (its status and
    message); the original traceback is dropped from the answer."""
    try:
        yield
    except RequestRefused as exc:
        raise Auth.exceptions.HTTPException(status_code=exc.status, detail=str(exc)) from None


@auth.on.threads.create_run
async def on_run_create(
    ctx: Auth.types.AuthContext, value: Auth.types.on.threads.create_run.value
) -> Auth.types.FilterType:
    """Runs on threads, stateless runs, and the runs a cron starts, all come through here."""
    owner = owner_of(ctx)
    with _refusals_as_http():
        check_run_request(value.get("kwargs") or {}, owner, studio=_is_studio(ctx))
    _stamp_owner(value, owner)  # type: ignore[arg-type]
    return {OWNER: owner}


@auth.on.threads.read
async def on_thread_read(
    ctx: Auth.types.AuthContext, value: Auth.types.on.threads.read.value
) -> Auth.types.FilterType:
    return {OWNER: owner_of(ctx)}


@auth.on.threads.search
async def on_thread_search(
    ctx: Auth.types.AuthContext, value: Auth.types.on.threads.search.value
) -> Auth.types.FilterType:
    return {OWNER: owner_of(ctx)}


@auth.on.threads.delete
async def on_thread_delete(
    ctx: Auth.types.AuthContext, value: Auth.types.on.threads.delete.value
) -> Auth.types.FilterType:
    return {OWNER: owner_of(ctx)}


@auth.on.threads.update
async def on_thread_update(
    ctx: Auth.types.AuthContext, value: Auth.types.on.threads.update.value
) -> Auth.types.FilterType:
    owner = owner_of(ctx)
    # langgraph-api checks run cancellation as a thread update with an `action`; that stays
    # allowed for the owner. State edits and metadata patches carry no action: refused, except
    # to Studio on a developer's machine where it was explicitly enabled.
    if value.get("action") in ("interrupt", "rollback") or _is_studio(ctx):
        return {OWNER: owner}
    raise _forbidden("Editing a thread's state or metadata is not allowed.")


# assistants -----------------------------------------------------------------------------


def system_assistant_ids() -> frozenset[str]:
    """The ids of the assistants langgraph-api made for the graphs in `langgraph.json`.

    langgraph-api derives them from the graph id (`uuid5(NAMESPACE_GRAPH, graph_id)`) and records
    them when it registers each graph at startup; no client chooses them. Outside a running
    server there are none, so nothing counts as the server's own.
    """
    module = sys.modules.get("langgraph_api.graph")
    ids = getattr(module, "SYSTEM_ASSISTANT_IDS", None) or ()
    return frozenset(str(i) for i in ids)


def _check_assistant(value: dict[str, Any], owner: str, *, update: bool) -> None:
    what = "An assistant"
    check_config(value.get("config"), owner, what=what)
    check_context(value.get("context"), owner, what=what)
    check_metadata(
        value.get("metadata"), what=what, owner_key=OWNER, owner=owner if update else None
    )
    if not update and str(value.get("assistant_id") or "") in system_assistant_ids():
        raise NotAllowed("That assistant id belongs to the graph's own assistant; choose another.")


@auth.on.assistants.create
async def on_assistant_create(
    ctx: Auth.types.AuthContext, value: Auth.types.on.assistants.create.value
) -> Auth.types.FilterType:
    owner = owner_of(ctx)
    with _refusals_as_http():
        _check_assistant(value, owner, update=False)  # type: ignore[arg-type]
    _stamp_owner(value, owner)  # type: ignore[arg-type]
    return {OWNER: owner}


@auth.on.assistants.read
async def on_assistant_read(
    ctx: Auth.types.AuthContext, value: Auth.types.on.assistants.read.value
) -> Auth.types.FilterType | None:
    owner = owner_of(ctx)
    # The graph's own assistant is recognised by its id, which no client controls; never by
    # metadata, which clients write.
    if str(value.get("assistant_id") or "") in system_assistant_ids():
        return None
    return {OWNER: owner}


@auth.on.assistants.search
async def on_assistant_search(
    ctx: Auth.types.AuthContext, value: Auth.types.on.assistants.search.value
) -> Auth.types.FilterType:
    # A listing can only filter on metadata. `created_by` is written by langgraph-api for the
    # graph's own assistant and refused in every client's create and update (above), and each
    # client-made assistant carries its owner's stamp.
    return {"$or": [{OWNER: owner_of(ctx)}, {"created_by": "system"}]}


@auth.on.assistants.update
async def on_assistant_update(
    ctx: Auth.types.AuthContext, value: Auth.types.on.assistants.update.value
) -> Auth.types.FilterType:
    """Updates (each a new version) and `set_latest` (choosing a version) of one's own."""
    owner = owner_of(ctx)
    with _refusals_as_http():
        _check_assistant(value, owner, update=True)  # type: ignore[arg-type]
    return {OWNER: owner}


@auth.on.assistants.delete
async def on_assistant_delete(
    ctx: Auth.types.AuthContext, value: Auth.types.on.assistants.delete.value
) -> Auth.types.FilterType:
    return {OWNER: owner_of(ctx)}


# crons ----------------------------------------------------------------------------------


def _check_cron(
    value: dict[str, Any], ctx: Auth.types.AuthContext, owner: str, *, update: bool
) -> None:
    payload = value.get("payload")
    if payload is not None:
        # A cron's payload becomes a run each time it fires.
        check_run_request(payload, owner, studio=_is_studio(ctx), what="A cron's run")
        if not _is_studio(ctx):
            check_config(payload.get("config"), owner, what="A cron's run")
    check_metadata(
        value.get("metadata"), what="A cron", owner_key=OWNER, owner=owner if update else None
    )


@auth.on.crons.create
async def on_cron_create(
    ctx: Auth.types.AuthContext, value: Auth.types.on.crons.create.value
) -> Auth.types.FilterType:
    owner = owner_of(ctx)
    with _refusals_as_http():
        _check_cron(value, ctx, owner, update=False)  # type: ignore[arg-type]
    _stamp_owner(value, owner)  # type: ignore[arg-type]
    return {OWNER: owner}


@auth.on.crons.update
async def on_cron_update(
    ctx: Auth.types.AuthContext, value: Auth.types.on.crons.update.value
) -> Auth.types.FilterType:
    owner = owner_of(ctx)
    with _refusals_as_http():
        _check_cron(value, ctx, owner, update=True)  # type: ignore[arg-type]
    return {OWNER: owner}


@auth.on.crons.read
@auth.on.crons.search
@auth.on.crons.delete
async def on_cron_access(ctx: Auth.types.AuthContext, value: Any) -> Auth.types.FilterType:
    return {OWNER: owner_of(ctx)}


# store: every namespace starts with its owner's identity ---------------------------------


@auth.on.store
async def on_store(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
    owner = owner_of(ctx)
    namespace = value.get("namespace")
    if ctx.action == "list_namespaces" and not namespace:
        value["namespace"] = (owner,)
        return
    if not namespace or namespace[0] != owner:
        raise _forbidden("Store namespaces must start with your own user id.")
