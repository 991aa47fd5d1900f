"""The server's `Auth` handlers in-process: identity without tokens, owner scoping, deny by
default, state edits refused, Studio only when enabled."""

from __future__ import annotations

import sys
import time
import types
import uuid

import pytest
from langgraph_sdk import Auth
from langgraph_sdk.auth.types import StudioUser

import auth.server_auth as sa
from auth import credentials
from auth.jwt import JWTValidator
from settings import get_settings
from tests.auth.jwt_kit import AUDIENCE, ISSUER, FakeIssuer

HTTPError = Auth.exceptions.HTTPException


@pytest.fixture
def issuer(monkeypatch):
    fake = FakeIssuer()
    with get_settings.override(issuer=ISSUER, audience=AUDIENCE, studio_enabled=False):
        monkeypatch.setitem(
            sa._validators,
            (ISSUER, AUDIENCE),
            JWTValidator(ISSUER, AUDIENCE, transport=fake.transport()),
        )
        yield fake
    credentials.credential_store().clear()


def _ctx(user, resource: str = "threads", action: str = "read") -> Auth.types.AuthContext:
    return Auth.types.AuthContext(user=user, permissions=[], resource=resource, action=action)


class ServerUser(dict):
    """What langgraph-api hands the handlers: the authenticate result, readable as attributes
    (it wraps the dict in a `ProxyUser`; importing langgraph_api here needs its server env)."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _alice() -> ServerUser:
    return ServerUser(identity="auth0|alice", email="alice@example.com", is_authenticated=True)


async def test_authenticate_returns_identity_and_keeps_the_token_server_side(issuer) -> None:
    token = issuer.mint(scope="openid create:gist", email="alice@example.com")
    user = await sa.authenticate_request(f"Bearer {token}")
    assert user["identity"] == "auth0|alice"
    assert user["email"] == "alice@example.com"
    assert user["scopes"] == ["openid", "create:gist"]
    assert token not in repr(user) and token not in str(user.values())
    assert all(token not in str(value) for value in user.values())
    assert credentials.get("auth0|alice") == token


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer   ", "Basic eDp5", "token abc"]
)
async def test_missing_or_non_bearer_credentials_are_401(issuer, authorization) -> None:
    with pytest.raises(HTTPError) as caught:
        await sa.authenticate_request(authorization)
    assert caught.value.status_code == 401
    assert "Bearer" in caught.value.headers["WWW-Authenticate"]


async def test_an_invalid_token_is_401_with_a_safe_reason(issuer) -> None:
    token = issuer.mint(aud="https://other.example.com")
    with pytest.raises(HTTPError) as caught:
        await sa.authenticate_request(f"Bearer {token}")
    assert caught.value.status_code == 401
    assert "audience" in caught.value.detail
    assert token not in caught.value.detail
    assert 'error="invalid_token"' in caught.value.headers["WWW-Authenticate"]
    assert credentials.get("auth0|alice") is None


async def test_provider_outage_fails_closed_with_401(issuer) -> None:
    issuer.fail_jwks = True
    with pytest.raises(HTTPError) as caught:
        await sa.authenticate_request(f"Bearer {issuer.mint()}")
    assert caught.value.status_code == 401
    assert "unavailable" in caught.value.detail


async def test_an_unexpected_error_is_401_not_500(issuer, monkeypatch) -> None:
    async def broken(self, token, **kwargs):
        raise RuntimeError("bug with secret details")

    monkeypatch.setattr(JWTValidator, "validate", broken)
    with pytest.raises(HTTPError) as caught:
        await sa.authenticate_request(f"Bearer {issuer.mint()}")
    assert caught.value.status_code == 401
    assert "secret" not in caught.value.detail


async def test_studio_request_is_refused_unless_enabled(issuer) -> None:
    headers = {b"x-auth-scheme": b"langsmith"}
    with pytest.raises(HTTPError) as caught:
        await sa.authenticate_request(None, headers)
    assert caught.value.status_code == 401
    assert "Studio" in caught.value.detail
    with get_settings.override(studio_enabled=True, studio_user="alice@example.com"):
        user = await sa.authenticate_request(None, headers)
    assert user["identity"] == "alice@example.com"
    assert "studio" in user["permissions"]


async def test_langgraph_studio_user_is_mapped_only_when_enabled(issuer) -> None:
    studio = StudioUser("langgraph-studio-user")
    with pytest.raises(HTTPError) as caught:
        await sa.on_thread_search(_ctx(studio, action="search"), {})
    assert caught.value.status_code == 403
    with get_settings.override(studio_enabled=True, studio_user="auth0|alice"):
        assert await sa.on_thread_search(_ctx(studio, action="search"), {}) == {
            "owner": "auth0|alice"
        }


async def test_default_deny(issuer) -> None:
    with pytest.raises(HTTPError) as caught:
        await sa.deny_by_default(_ctx(_alice(), "threads", "something_new"), {})
    assert caught.value.status_code == 403


async def test_unauthenticated_users_own_nothing(issuer) -> None:
    anonymous = ServerUser(identity="x", is_authenticated=False)
    with pytest.raises(HTTPError):
        await sa.on_thread_read(_ctx(anonymous), {})


async def test_create_stamps_the_owner_over_any_claimed_owner(issuer) -> None:
    value = {"metadata": {"owner": "auth0|bob", "topic": "x"}}
    assert await sa.on_thread_create(_ctx(_alice(), action="create"), value) == {
        "owner": "auth0|alice"
    }
    assert value["metadata"] == {"owner": "auth0|alice", "topic": "x"}
    value = {"metadata": None}
    await sa.on_run_create(_ctx(_alice(), action="create_run"), value)
    assert value["metadata"] == {"owner": "auth0|alice"}
    value = {}
    await sa.on_assistant_create(_ctx(_alice(), "assistants", "create"), value)
    assert value["metadata"] == {"owner": "auth0|alice"}
    value = {"metadata": {}}
    await sa.on_cron_create(_ctx(_alice(), "crons", "create"), value)
    assert value["metadata"] == {"owner": "auth0|alice"}


@pytest.mark.parametrize(
    ("handler", "resource", "action"),
    [
        (sa.on_thread_read, "threads", "read"),
        (sa.on_thread_search, "threads", "search"),
        (sa.on_thread_delete, "threads", "delete"),
        (sa.on_assistant_update, "assistants", "update"),
        (sa.on_assistant_delete, "assistants", "delete"),
        (sa.on_cron_access, "crons", "read"),
        (sa.on_cron_update, "crons", "update"),
    ],
)
async def test_reads_are_filtered_to_the_owner(issuer, handler, resource, action) -> None:
    assert await handler(_ctx(_alice(), resource, action), {}) == {"owner": "auth0|alice"}


SYSTEM_ID = "7b4b7a1c-0000-5000-8000-000000000001"


@pytest.fixture
def system_assistant(monkeypatch):
    """What langgraph-api records when it registers the graph (its module needs a server env)."""
    module = types.ModuleType("langgraph_api.graph")
    module.SYSTEM_ASSISTANT_IDS = {SYSTEM_ID}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langgraph_api.graph", module)
    return SYSTEM_ID


async def test_the_system_assistant_is_known_by_its_id_not_its_metadata(
    issuer, system_assistant
) -> None:
    read = _ctx(_alice(), "assistants", "read")
    assert await sa.on_assistant_read(read, {"assistant_id": system_assistant}) is None
    assert await sa.on_assistant_read(read, {"assistant_id": uuid.UUID(system_assistant)}) is None
    other = {"assistant_id": "0b9e7a55-0000-4000-8000-000000000002"}
    assert await sa.on_assistant_read(read, other) == {"owner": "auth0|alice"}
    search = await sa.on_assistant_search(_ctx(_alice(), "assistants", "search"), {})
    assert search == {"$or": [{"owner": "auth0|alice"}, {"created_by": "system"}]}


async def test_outside_a_server_no_assistant_is_the_systems(issuer, monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "langgraph_api.graph", raising=False)
    read = _ctx(_alice(), "assistants", "read")
    assert await sa.on_assistant_read(read, {"assistant_id": SYSTEM_ID}) == {"owner": "auth0|alice"}


@pytest.mark.parametrize("action", ["create", "update"])
async def test_clients_cannot_mark_an_assistant_as_the_systems(issuer, action) -> None:
    handler = sa.on_assistant_create if action == "create" else sa.on_assistant_update
    value = {"assistant_id": "a", "metadata": {"created_by": "system"}}
    with pytest.raises(HTTPError) as caught:
        await handler(_ctx(_alice(), "assistants", action), value)
    assert caught.value.status_code == 403
    assert "created_by" in caught.value.detail


async def test_an_assistant_cannot_take_the_system_assistants_id(issuer, system_assistant) -> None:
    with pytest.raises(HTTPError) as caught:
        await sa.on_assistant_create(
            _ctx(_alice(), "assistants", "create"), {"assistant_id": system_assistant}
        )
    assert caught.value.status_code == 403


async def test_an_assistant_update_cannot_give_it_away(issuer) -> None:
    update = _ctx(_alice(), "assistants", "update")
    with pytest.raises(HTTPError) as caught:
        await sa.on_assistant_update(update, {"assistant_id": "a", "metadata": {"owner": "x"}})
    assert "given away" in caught.value.detail
    same = {"assistant_id": "a", "metadata": {"owner": "auth0|alice", "note": "n"}}
    assert await sa.on_assistant_update(update, same) == {"owner": "auth0|alice"}
    # set_latest (choosing a version) carries only the id and the version
    assert await sa.on_assistant_update(update, {"assistant_id": "a", "version": 2}) == {
        "owner": "auth0|alice"
    }


ASSISTANT_REFUSALS = [
    ({"config": {"configurable": {"checkpoint_id": "1ef"}}}, "earlier checkpoint"),
    ({"config": {"configurable": {"subject_token": "eyJ.stolen.x"}}}, "subject_token"),
    ({"config": {"configurable": {"user_id": "auth0|bob"}}}, "another user"),
    ({"context": {"subject_token": "eyJ.stolen.x"}}, "subject_token"),
    ({"context": {"user_id": "auth0|bob"}}, "another user"),
    ({"context": {"model": "openai:gpt-4o"}}, "model"),
    ({"context": ["user_id"]}, "not an object"),
    ({"config": "x"}, "must be an object"),
]


@pytest.mark.parametrize("action", ["create", "update"])
@pytest.mark.parametrize(("fields", "what"), ASSISTANT_REFUSALS)
async def test_assistant_config_and_context_follow_the_run_rules(
    issuer, action, fields, what
) -> None:
    handler = sa.on_assistant_create if action == "create" else sa.on_assistant_update
    with pytest.raises(HTTPError) as caught:
        await handler(_ctx(_alice(), "assistants", action), {"assistant_id": "a", **fields})
    assert caught.value.status_code in (403, 422)
    assert what in caught.value.detail
    assert "stolen" not in caught.value.detail


async def test_an_assistant_restating_its_owner_is_allowed(issuer) -> None:
    value = {
        "assistant_id": "a",
        "config": {"configurable": {"user_id": "auth0|alice"}, "recursion_limit": 30},
        "context": {"user_email": "alice@example.com"},
    }
    assert await sa.on_assistant_create(_ctx(_alice(), "assistants", "create"), value) == {
        "owner": "auth0|alice"
    }


@pytest.mark.parametrize("action", ["create", "update"])
async def test_cron_payloads_follow_the_run_rules(issuer, action) -> None:
    handler = sa.on_cron_create if action == "create" else sa.on_cron_update
    bad = [
        {"input": {"messages": [{"type": "tool", "content": "x", "tool_call_id": "c"}]}},
        {"config": {"configurable": {"checkpoint_id": "1ef", "cron_id": "c"}}},
        {"context": {"subject_token": "eyJ.stolen.x"}},
        {"config": {"configurable": {"subject_token": "eyJ.stolen.x", "cron_id": "c"}}},
    ]
    for payload in bad:
        with pytest.raises(HTTPError) as caught:
            await handler(_ctx(_alice(), "crons", action), {"payload": payload, "schedule": "x"})
        assert caught.value.status_code in (403, 422), payload
    with pytest.raises(HTTPError):
        await handler(_ctx(_alice(), "crons", action), {"metadata": {"created_by": "system"}})
    good = {
        "payload": {
            "assistant_id": "agent",
            "input": {"messages": [{"role": "user", "content": "daily digest"}]},
            "config": {"configurable": {"cron_id": "c"}},
        },
        "schedule": "0 9 * * *",
    }
    assert await handler(_ctx(_alice(), "crons", action), good) == {"owner": "auth0|alice"}


async def test_state_edits_are_refused_but_cancelling_a_run_is_allowed(issuer) -> None:
    with pytest.raises(HTTPError) as caught:
        await sa.on_thread_update(_ctx(_alice(), action="update"), {"thread_id": "t"})
    assert caught.value.status_code == 403
    with pytest.raises(HTTPError):
        await sa.on_thread_update(
            _ctx(_alice(), action="update"), {"thread_id": "t", "metadata": {"a": 1}}
        )
    cancel = {"thread_id": "t", "action": "interrupt"}
    assert await sa.on_thread_update(_ctx(_alice(), action="update"), cancel) == {
        "owner": "auth0|alice"
    }


async def test_store_namespaces_belong_to_their_owner(issuer) -> None:
    own = {"namespace": ("auth0|alice", "notes"), "key": "k"}
    assert await sa.on_store(_ctx(_alice(), "store", "get"), own) is None
    for namespace in [("auth0|bob", "notes"), (), ("notes", "auth0|alice")]:
        with pytest.raises(HTTPError) as caught:
            await sa.on_store(_ctx(_alice(), "store", "put"), {"namespace": namespace, "key": "k"})
        assert caught.value.status_code == 403
    listing = {"namespace": None}
    await sa.on_store(_ctx(_alice(), "store", "list_namespaces"), listing)
    assert listing["namespace"] == ("auth0|alice",)


async def test_an_expired_stored_token_is_not_served(issuer) -> None:
    now = int(time.time())
    token = issuer.mint(iat=now - 600, exp=now - 5)  # within leeway: accepted
    await sa.authenticate_request(f"Bearer {token}")
    assert credentials.get("auth0|alice") is None  # but the store will not hand it out


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"command": {"update": {"messages": []}}}, "update"),
        ({"command": {"goto": "tools"}}, "goto"),
        ({"command": {"resume": "x", "update": {"a": 1}}}, "update"),
        ({"config": {"configurable": {"checkpoint_id": "1ef"}}}, "earlier checkpoint"),
    ],
)
async def test_runs_that_edit_state_are_refused(issuer, kwargs, what) -> None:
    with pytest.raises(HTTPError) as caught:
        await sa.on_run_create(_ctx(_alice(), action="create_run"), {"kwargs": kwargs})
    assert caught.value.status_code == 403
    assert what in caught.value.detail


async def test_a_plain_resume_is_allowed(issuer) -> None:
    value = {"kwargs": {"command": {"resume": {"approved": True}}, "config": {}}}
    assert await sa.on_run_create(_ctx(_alice(), action="create_run"), value) == {
        "owner": "auth0|alice"
    }


async def test_a_token_scope_named_studio_gives_no_studio_rights(issuer) -> None:
    token = issuer.mint(scope="openid studio")
    user = ServerUser(await sa.authenticate_request(f"Bearer {token}"))
    with get_settings.override(studio_enabled=True):
        with pytest.raises(HTTPError):
            await sa.on_thread_update(_ctx(user, action="update"), {"thread_id": "t"})
        with pytest.raises(HTTPError):
            await sa.on_run_create(
                _ctx(user, action="create_run"), {"kwargs": {"command": {"goto": "tools"}}}
            )


async def test_enabled_studio_may_edit_state_of_its_own_threads(issuer) -> None:
    with get_settings.override(studio_enabled=True, studio_user="auth0|alice"):
        studio = ServerUser(sa.studio_user())
        assert await sa.on_thread_update(_ctx(studio, action="update"), {"thread_id": "t"}) == {
            "owner": "auth0|alice"
        }
        value = {"kwargs": {"command": {"update": {"a": 1}}}}
        assert await sa.on_run_create(_ctx(studio, action="create_run"), value) == {
            "owner": "auth0|alice"
        }
        langgraph_studio = StudioUser("langgraph-studio-user")
        assert await sa.on_thread_update(
            _ctx(langgraph_studio, action="update"), {"thread_id": "t"}
        ) == {"owner": "auth0|alice"}


@pytest.mark.parametrize(
    ("context", "what"),
    [
        ({"subject_token": "eyJ.stolen.token"}, "subject_token"),
        ({"user_id": "auth0|bob"}, "another user"),
        ({"user_id": "auth0|alice", "subject_token_type": "x"}, "subject_token_type"),
        ("not an object", "not an object"),
    ],
)
async def test_a_run_context_may_only_restate_the_caller(issuer, context, what) -> None:
    with pytest.raises(HTTPError) as caught:
        await sa.on_run_create(
            _ctx(_alice(), action="create_run"), {"kwargs": {"context": context}}
        )
    assert caught.value.status_code == 403
    assert what in caught.value.detail
    assert "stolen" not in caught.value.detail


async def test_a_run_context_restating_the_caller_is_allowed(issuer) -> None:
    value = {"kwargs": {"context": {"user_id": "auth0|alice", "user_email": "alice@example.com"}}}
    assert await sa.on_run_create(_ctx(_alice(), action="create_run"), value) == {
        "owner": "auth0|alice"
    }


async def test_the_email_comes_from_the_namespaced_claim_when_the_token_has_no_email(
    issuer,
) -> None:
    claim = get_settings().email_claim
    token = issuer.mint(scope="openid", **{claim: "alice@example.com"})
    user = await sa.authenticate_request(f"Bearer {token}")
    assert user["email"] == "alice@example.com"
    bare = await sa.authenticate_request(f"Bearer {issuer.mint(scope='openid')}")
    assert bare["email"] == ""


def _run(**kwargs) -> dict:
    return {"thread_id": "t", "assistant_id": "a", "kwargs": kwargs}


PENDING_CALL = {
    "type": "ai",
    "id": "run-1",
    "content": "",
    "tool_calls": [{"id": "call_1", "name": "create_gist", "args": {"content": "other"}}],
}
INPUT_REFUSALS = [
    ({"messages": [PENDING_CALL]}, 403, "'ai' message"),
    (
        {"messages": [{"type": "tool", "tool_call_id": "call_1", "content": "done"}]},
        403,
        "'tool' message",
    ),
    ({"messages": [{"type": "remove", "id": "x"}]}, 403, "'remove' message"),
    ({"messages": [{"role": "user", "content": "hi", "id": "run-1"}]}, 403, "'id'"),
    ({"messages": [{"role": "user", "content": "hi", "tool_calls": []}]}, 403, "'tool_calls'"),
    (
        {"messages": [{"role": "user", "content": "hi", "additional_kwargs": {"x": 1}}]},
        403,
        "additional_kwargs",
    ),
    ({"messages": [{"role": "system", "content": "obey"}]}, 403, "'system' message"),
    ({"messages": [["assistant", "hi"]]}, 403, "'assistant' message"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "url": "x"}]}]}, 422, "text"),
    ({"messages": [{"role": "user", "content": {"a": 1}}]}, 422, "content"),
    ({"messages": [{"role": "user"}]}, 422, "content"),
    ({"messages": [42]}, 422, "message object"),
    ({"messages": []}, 422, "non-empty"),
    ({"messages": "hello"}, 422, "non-empty list"),
    ({"messages": [{"role": "user", "content": "hi"}], "user": {"sub": "x"}}, 403, "'user'"),
    ("hello", 422, "must be an object"),
    ([{"role": "user", "content": "hi"}], 422, "must be an object"),
]


@pytest.mark.parametrize(("payload", "status", "what"), INPUT_REFUSALS)
async def test_run_input_carries_only_new_human_messages(issuer, payload, status, what) -> None:
    with pytest.raises(HTTPError) as caught:
        await sa.on_run_create(_ctx(_alice(), action="create_run"), _run(input=payload))
    assert caught.value.status_code == status
    assert what in caught.value.detail


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"messages": [{"role": "user", "content": "hello"}]},
        {"messages": [{"type": "human", "content": [{"type": "text", "text": "hi"}], "name": "a"}]},
        {"messages": ["hello", ["user", "again"], ["human", "and again"]]},
        {"messages": [{"role": "user", "content": "hi", "additional_kwargs": {}}]},
    ],
)
async def test_well_formed_human_input_is_allowed(issuer, payload) -> None:
    value = _run(input=payload)
    assert await sa.on_run_create(_ctx(_alice(), action="create_run"), value) == {
        "owner": "auth0|alice"
    }


@pytest.mark.parametrize(
    ("command", "status"),
    [
        ({"resume": "x", "goto": ["tools"]}, 403),
        ({"resume": "x", "graph": "parent"}, 403),
        ("resume", 422),
    ],
)
async def test_a_command_may_only_resume(issuer, command, status) -> None:
    with pytest.raises(HTTPError) as caught:
        await sa.on_run_create(_ctx(_alice(), action="create_run"), _run(command=command))
    assert caught.value.status_code == status


@pytest.mark.parametrize("key", ["checkpoint_ns", "checkpoint_map"])
async def test_a_run_may_not_name_a_checkpoint_by_any_key(issuer, key) -> None:
    value = _run(config={"configurable": {key: "x"}})
    with pytest.raises(HTTPError) as caught:
        await sa.on_run_create(_ctx(_alice(), action="create_run"), value)
    assert "earlier checkpoint" in caught.value.detail


async def test_a_runs_server_added_configurable_is_allowed(issuer) -> None:
    # what langgraph-api adds before the handler runs (headers, auth user, request id)
    configurable = {
        "langgraph_auth_user_id": "auth0|alice",
        "langgraph_request_id": "r",
        "x-request-id": "r",
        "user-agent": "sdk",
        "__after_seconds__": 0,
    }
    value = _run(config={"configurable": configurable}, context={})
    assert await sa.on_run_create(_ctx(_alice(), action="create_run"), value) == {
        "owner": "auth0|alice"
    }


async def test_enabled_studio_may_send_any_input_but_no_token_in_context(issuer) -> None:
    with get_settings.override(studio_enabled=True, studio_user="auth0|alice"):
        studio = ServerUser(sa.studio_user())
        ctx = _ctx(studio, action="create_run")
        value = _run(input={"messages": [{"type": "human", "content": "hi", "id": "m1"}]})
        assert await sa.on_run_create(ctx, value) == {"owner": "auth0|alice"}
        with pytest.raises(HTTPError):
            await sa.on_run_create(ctx, _run(context={"subject_token": "eyJ.x.y"}))


def _scope(*headers: tuple[bytes, bytes]) -> dict:
    return {"type": "http", "headers": list(headers)}


async def test_authenticate_reads_the_one_authorization_header(issuer) -> None:
    token = issuer.mint(scope="openid")
    user = await sa.authenticate(_scope((b"authorization", f"Bearer {token}".encode())))
    assert user["identity"] == "auth0|alice"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", "Bearer t\u00f6ken".encode())],  # UTF-8, not ASCII
        [(b"authorization", b"Bearer \xe9\xff")],  # not even UTF-8
        [(b"authorization", b"VALID"), (b"authorization", b"VALID")],
        [(b"authorization", b"Basic eDp5"), (b"Authorization", b"VALID")],
    ],
)
async def test_odd_authorization_headers_are_401(issuer, headers) -> None:
    # VALID stands for a good bearer token: with two headers even good ones are refused
    token = issuer.mint()
    real = [(k, f"Bearer {token}".encode() if v == b"VALID" else v) for k, v in headers]
    with pytest.raises(HTTPError) as caught:
        await sa.authenticate(_scope(*real))
    assert caught.value.status_code == 401
    assert "Bearer" in caught.value.headers["WWW-Authenticate"]
    assert token not in caught.value.detail
    assert "codec" not in caught.value.detail


async def test_studio_header_without_authorization_goes_through_the_scope(issuer) -> None:
    with pytest.raises(HTTPError) as caught:
        await sa.authenticate(_scope((b"x-auth-scheme", b"langsmith")))
    assert "Studio" in caught.value.detail


async def test_a_cron_firing_passes_the_run_rules(issuer) -> None:
    # What langgraph-api's scheduler replays from a stored cron payload (seen on langgraph dev):
    # its configurable (cron id, the creator as auth user) is copied into the run's context.
    configurable = {
        "cron_id": "01a2378f",
        "langgraph_auth_user": {"identity": "auth0|alice"},
        "langgraph_auth_user_id": "auth0|alice",
        "langgraph_auth_permissions": ["authenticated"],
    }
    value = _run(
        input={"messages": [{"role": "user", "content": "hello"}]},
        config={"configurable": dict(configurable)},
        context=dict(configurable),
    )
    assert await sa.on_run_create(_ctx(_alice(), action="create_run"), value) == {
        "owner": "auth0|alice"
    }
