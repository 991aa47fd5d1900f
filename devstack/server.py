"""Run the devstack (identity provider, local GitHub API, OpenFGA API) with uvicorn on loopback.

Sockets are bound first, so that each app is built knowing its final URL: the provider's issuer
must equal the URL it is reached at, also with ephemeral ports (port 0) in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from devstack.serving import EmbeddedServer
from settings import Settings, get_settings

log = logging.getLogger(__name__)

# (name, module, factory): the GitHub and OpenFGA stand-ins are optional modules
_OPTIONAL_APPS = (
    ("github", "devstack.github_api", "create_github_app"),
    ("fga", "devstack.openfga_api", "create_openfga_app"),
)


@dataclass
class _Service:
    name: str
    sock: socket.socket
    url: str
    app: Any = None
    server: EmbeddedServer | None = None


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _optional_factory(module_name: str, factory: str) -> Callable[..., Any] | None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    return getattr(module, factory, None)


class DevStack:
    """The local stand-ins, served on 127.0.0.1 (in a background thread, or in the foreground).

    ```
    with DevStack(settings) as stack:          # ports from settings; 0 = ephemeral
        stack.issuer, stack.github_url, stack.fga_url
        with get_settings.override(**stack.overrides): ...
    ```
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        ephemeral: bool = False,
        data_dir: Path | None = None,
        log_level: str = "warning",
    ) -> None:
        base = settings or get_settings()
        if data_dir is not None:
            base = base.model_copy(update={"data_dir": data_dir})
        self._base = base
        self._ephemeral = ephemeral
        self._log_level = log_level
        self._services: dict[str, _Service] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self.settings: Settings = base
        self.identity_app: Any = None

    # URLs and configuration for clients ------------------------------------------------------

    @property
    def issuer(self) -> str:
        return self._services["identity"].url + "/"

    @property
    def github_url(self) -> str | None:
        service = self._services.get("github")
        return service.url if service else None

    @property
    def fga_url(self) -> str | None:
        service = self._services.get("fga")
        return service.url if service else None

    @property
    def provider(self) -> Any:
        """The running `IdentityProvider` (tests use it to count or to inspect)."""
        return self.identity_app.state.provider

    @property
    def overrides(self) -> dict[str, Any]:
        """Settings changes that point a client at this devstack (`get_settings.override`)."""
        out: dict[str, Any] = {"issuer": self.issuer}
        if self.github_url:
            out["github_api_url"] = self.github_url
        if self.fga_url:
            out["fga_api_url"] = self.fga_url
        return out

    def env(self) -> dict[str, str]:
        """The `WARRANT_*` environment that configures the agent for this devstack."""
        s = self.settings
        env = {
            "WARRANT_ISSUER": self.issuer,
            "WARRANT_AUDIENCE": s.audience,
            "WARRANT_AGENT_CLIENT_ID": s.agent_client_id,
            "WARRANT_AGENT_CLIENT_SECRET": s.agent_client_secret.get_secret_value(),
            "WARRANT_CLI_CLIENT_ID": s.cli_client_id,
        }
        if self.github_url:
            env["WARRANT_GITHUB_API_URL"] = self.github_url
        if self.fga_url:
            env["WARRANT_FGA_API_URL"] = self.fga_url
        return env

    # lifecycle --------------------------------------------------------------------------------

    def _port(self, name: str) -> int:
        if self._ephemeral:
            return 0
        return {
            "identity": self._base.devstack_idp_port,
            "github": self._base.devstack_github_port,
            "fga": self._base.devstack_fga_port,
        }[name]

    def _build(self) -> None:
        from devstack.identity import create_identity_app

        host = self._base.devstack_host
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the devstack serves loopback only, not {host!r}")
        factories = {"identity": create_identity_app}
        for name, module, factory in _OPTIONAL_APPS:
            found = _optional_factory(module, factory)
            if found is not None:
                factories[name] = found
        try:
            for name in factories:
                sock = _bind("127.0.0.1", self._port(name))
                port = sock.getsockname()[1]
                self._services[name] = _Service(name, sock, f"http://127.0.0.1:{port}")
        except OSError:
            self._close_sockets()
            raise
        update: dict[str, Any] = {"issuer": self._services["identity"].url + "/"}
        if "github" in self._services:
            update["github_api_url"] = self._services["github"].url
        if "fga" in self._services:
            update["fga_api_url"] = self._services["fga"].url
        self.settings = self._base.model_copy(update=update)
        for name, factory in factories.items():
            self._services[name].app = factory(self.settings)
        self.identity_app = self._services["identity"].app

    def _close_sockets(self) -> None:
        for service in self._services.values():
            with contextlib.suppress(OSError):
                service.sock.close()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        tasks = []
        for service in self._services.values():
            config = uvicorn.Config(
                service.app,
                log_level=self._log_level,
                lifespan="auto",
                access_log=False,
            )
            service.server = EmbeddedServer(config)
            tasks.append(service.server.serve(sockets=[service.sock]))
        await asyncio.gather(*tasks)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc

    def start(self, timeout: float = 15.0) -> DevStack:
        """Bind, build and serve in a background thread; returns once every server accepts."""
        if self._thread is not None:
            raise RuntimeError("this DevStack is already running")
        self._build()
        self._thread = threading.Thread(target=self._run, name="warrant-devstack", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not all(s.server is not None and s.server.started for s in self._services.values()):
            if self._error is not None or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the devstack failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the devstack did not start in time")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        for service in self._services.values():
            if service.server is not None:
                service.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        self._close_sockets()

    def serve_forever(self, on_started: Callable[[DevStack], None] | None = None) -> None:
        """Serve in the foreground until Ctrl-C or SIGTERM."""
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        self.start()
        try:
            if on_started is not None:
                on_started(self)
            while not stop.wait(0.5):
                if self._thread is None or not self._thread.is_alive():
                    break
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
            signal.signal(signal.SIGTERM, previous)

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
