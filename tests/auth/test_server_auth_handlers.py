"""The server's `Auth` handlers in-process: identity without tokens, owner scoping, deny by
default, state edits refused, Studio only when enabled."""

from __future__ import annotations

import time

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
    user = await sa.authenticate(f"Bearer {token}")
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
        await sa.authenticate(authorization)
    assert caught.value.status_code == 401
    assert "Bearer" in caught.value.headers["WWW-Authenticate"]


async def test_an_invalid_token_is_401_with_a_safe_reason(issuer) -> None:
    token = issuer.mint(aud="https://other.example.com")
    with pytest.raises(HTTPError) as caught:
        await sa.authenticate(f"Bearer {token}")
    assert caught.value.status_code == 401
    assert "audience" in caught.value.detail
    assert token not in caught.value.detail
    assert 'error="invalid_token"' in caught.value.headers["WWW-Authenticate"]
    assert credentials.get("auth0|alice") is None


async def test_provider_outage_fails_closed_with_401(issuer) -> None:
    issuer.fail_jwks = True
    with pytest.raises(HTTPError) as caught:
        await sa.authenticate(f"Bearer {issuer.mint()}")
    assert caught.value.status_code == 401
    assert "unavailable" in caught.value.detail


async def test_an_unexpected_error_is_401_not_500(issuer, monkeypatch) -> None:
    async def broken(self, token, **kwargs):
        raise RuntimeError("bug with secret details")

    monkeypatch.setattr(JWTValidator, "validate", broken)
    with pytest.raises(HTTPError) as caught:
        await sa.authenticate(f"Bearer {issuer.mint()}")
    assert caught.value.status_code == 401
    assert "secret" not in caught.value.detail


async def test_studio_request_is_refused_unless_enabled(issuer) -> None:
    headers = {b"x-auth-scheme": b"langsmith"}
    with pytest.raises(HTTPError) as caught:
        await sa.authenticate(None, headers)
    assert caught.value.status_code == 401
    assert "Studio" in caught.value.detail
    with get_settings.override(studio_enabled=True, studio_user="alice@example.com"):
        user = await sa.authenticate(None, headers)
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
    ],
)
async def test_reads_are_filtered_to_the_owner(issuer, handler, resource, action) -> None:
    assert await handler(_ctx(_alice(), resource, action), {}) == {"owner": "auth0|alice"}


async def test_assistant_reads_include_the_system_assistant(issuer) -> None:
    result = await sa.on_assistant_read(_ctx(_alice(), "assistants", "read"), {})
    assert result == {"$or": [{"owner": "auth0|alice"}, {"created_by": "system"}]}


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
    await sa.authenticate(f"Bearer {token}")
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
    user = ServerUser(await sa.authenticate(f"Bearer {token}"))
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
    user = await sa.authenticate(f"Bearer {token}")
    assert user["email"] == "alice@example.com"
    bare = await sa.authenticate(f"Bearer {issuer.mint(scope='openid')}")
    assert bare["email"] == ""
