"""The one settings object: every part of Warrant reads its configuration from here, once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVSTACK_IDP_PORT = 9400
DEVSTACK_GITHUB_PORT = 9401
DEVSTACK_FGA_PORT = 9402


class Settings(BaseSettings):
    """Environment variables prefixed `WARRANT_` (or a `.env` file); embedded defaults otherwise."""

    model_config = SettingsConfigDict(
        env_prefix="WARRANT_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    # local state: devstack keys and users, SQLite checkpoints, ledger, tuples, Chroma
    data_dir: Path = Path(".warrant")
    log_level: str = "INFO"

    # chat model: "offline" or "openai:<model>"
    model: str = "offline"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None

    # identity provider (Auth0 in production; the devstack provider by default)
    issuer: str = f"http://127.0.0.1:{DEVSTACK_IDP_PORT}/"
    audience: str = "https://api.warrant.local"
    agent_client_id: str = "warrant-agent"
    agent_client_secret: SecretStr = SecretStr("warrant-agent-secret")
    cli_client_id: str = "warrant-cli"
    # access tokens carry no email; Auth0 adds it with a post-login Action as a namespaced claim
    # (`api.accessToken.setCustomClaim(...)`), and the devstack provider does the same
    email_claim: str = "https://warrant.dev/email"
    jwt_leeway_seconds: int = 30
    jwks_min_refresh_seconds: float = 60.0
    http_timeout_seconds: float = 10.0
    # after a failed discovery or JWKS fetch, callers are refused at once for this long instead
    # of each waiting on the provider again (a slow provider must not queue requests)
    provider_failure_cache_seconds: float = 5.0

    # devstack (local stand-ins); passwords of the seeded users
    devstack_host: str = "127.0.0.1"
    devstack_idp_port: int = DEVSTACK_IDP_PORT
    devstack_github_port: int = DEVSTACK_GITHUB_PORT
    devstack_fga_port: int = DEVSTACK_FGA_PORT
    alice_password: SecretStr = SecretStr("alice-password")
    bob_password: SecretStr = SecretStr("bob-password")

    # LangGraph Studio: off unless explicitly enabled for local development
    studio_enabled: bool = False
    studio_user: str = "alice@example.com"

    # Token Vault and GitHub
    github_connection: str = "github"
    github_api_url: str = f"http://127.0.0.1:{DEVSTACK_GITHUB_PORT}"
    # where a user connects an account: the devstack provider's page, or your app's connect route
    token_vault_connect_url: str = (
        "{issuer}connected-accounts/connect?connection={connection}&scopes={scopes}"
    )
    token_vault_refresh_margin_seconds: float = 60.0
    github_timeout_seconds: float = 10.0
    # the devstack provider's OAuth app at the local GitHub (Auth0 holds these in production)
    devstack_github_client_id: str = "Iv1.warrantdevstack"
    devstack_github_client_secret: SecretStr = SecretStr("warrant-devstack-github-secret")
    devstack_github_search_rate_limit: int = 30

    # CIBA approvals
    ciba_requested_expiry: int = 300
    ciba_notification_token: SecretStr | None = None
    approvals_db: str | None = None  # a SQLite path or postgresql:// URL; default in data_dir
    # how the devstack provider delivers CIBA results to the agent client: Auth0's default
    # `poll`, or `ping` to `ciba_notification_endpoint` (the agent's callback route)
    ciba_delivery_mode: Literal["poll", "ping"] = "poll"
    ciba_notification_endpoint: str | None = None
    resumer_enabled: bool = True

    # audit trail (append-only, hash-chained): SQLite path or postgresql:// URL; default data_dir
    audit_db: str | None = None
    # delegation: checks the agent makes for a user also require the user's delegation to the
    # agent (`agent:<agent_client_id>`); off keeps user-only checks for deployments that have
    # written no delegation tuples yet (see auth/delegation.py)
    delegation_enforced: bool = False

    # checkpoints for `warrant chat` and plain Python: sqlite (default) or a postgresql:// URL
    checkpoint_url: str | None = None

    # production server (`warrant serve`: Aegra on PostgreSQL; several processes may share it)
    database_url: str | None = None  # postgresql://... for runs, threads and checkpoints
    serve_host: str = "127.0.0.1"
    serve_port: int = 2024
    # how this process reaches its own server API (resumes); default http://serve_host:serve_port
    server_url: str | None = None
    replica_id: str | None = None  # this process's name among the replicas (default host:pid)
    serve_db_pool_size: int = 10  # Aegra's SQLAlchemy pool (its default, 2, starves under load)
    # a run whose server process stopped heartbeating for this long is recovered by another one
    orphan_run_seconds: float = 15.0
    replica_heartbeat_seconds: float = 2.0

    # FGA: the embedded engine, or an OpenFGA server / Okta FGA through openfga-sdk
    fga_backend: Literal["local", "openfga"] = "local"
    fga_api_url: str = f"http://127.0.0.1:{DEVSTACK_FGA_PORT}"
    fga_store_id: str | None = None
    fga_model_id: str | None = None
    fga_api_token: SecretStr | None = None
    fga_client_id: str | None = None
    fga_client_secret: SecretStr | None = None
    fga_api_token_issuer: str | None = None
    fga_api_audience: str | None = None
    fga_timeout_seconds: float = 5.0
    fga_max_retries: int = 3  # 429/5xx and refused connections, with backoff
    fga_consistency: Literal["MINIMIZE_LATENCY", "HIGHER_CONSISTENCY"] | None = None

    # documents: Chroma persistent folder, or a Chroma server; local or OpenAI embeddings
    chroma_mode: Literal["persistent", "http"] = "persistent"
    chroma_host: str = "127.0.0.1"
    chroma_port: int = 8000
    chroma_collection: str = "warrant-docs"
    embeddings: str = "local"  # "local" or "openai:<model>"
    retrieval_k: int = 5
    ingest_max_bytes: int = 20_000_000
    ingest_chunk_size: int = 800
    ingest_chunk_overlap: int = 100

    extra: dict[str, str] = Field(default_factory=dict)

    @property
    def issuer_url(self) -> str:
        """The issuer with exactly one trailing slash, as Auth0 writes it in `iss`."""
        return self.issuer.rstrip("/") + "/"

    def path(self, name: str) -> Path:
        """A file or folder inside the data directory, created on first use."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir / name


class _ProcessSettings:
    """Holds the process's settings: read from the environment once, on first use."""

    def __init__(self) -> None:
        self._value: Settings | None = None

    def __call__(self) -> Settings:
        if self._value is None:
            self._value = Settings()
        return self._value

    def cache_clear(self) -> None:
        """Forget the settings read so far; the next call reads the environment again."""
        self._value = None

    @contextlib.contextmanager
    def override(self, **changes: object) -> Iterator[Settings]:
        """Run with some settings changed (the in-process demo points them at its devstack)."""
        previous = self._value
        self._value = self().model_copy(update=changes)
        try:
            yield self._value
        finally:
            self._value = previous


get_settings = _ProcessSettings()
