"""A deliberately slow identity provider on loopback: it counts requests and answers only when
released (or never), so tests can see how many fetches concurrent callers cause."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DISCOVERY = "/.well-known/openid-configuration"


class SlowIssuer:
    """Holds requests until `release()` (those for the `hold` paths, or all); `hits` counts
    requests per path as they arrive. Answers discovery, and an empty key set at `/jwks`."""

    def __init__(self, hold: tuple[str, ...] | None = None) -> None:
        self.hold = hold
        self.hits: Counter[str] = Counter()
        self.arrived = threading.Condition()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with issuer.arrived:
                    issuer.hits[self.path] += 1
                    issuer.arrived.notify_all()
                if issuer.hold is None or self.path in issuer.hold:
                    issuer._released.wait(60)
                document = {
                    "issuer": issuer.url,
                    "jwks_uri": issuer.url + "jwks",
                    "token_endpoint": issuer.url + "token",
                }
                body = json.dumps({"keys": []} if self.path == "/jwks" else document).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up long ago

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def wait_for(self, path: str, count: int, timeout: float = 30) -> bool:
        """Block until `count` requests for `path` arrived (False on timeout)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: self.hits[path] >= count, timeout)

    def release(self) -> None:
        self._released.set()

    @contextmanager
    def serving(self) -> Iterator[SlowIssuer]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release()
            self._server.shutdown()
            self._server.server_close()
            thread.join(10)
