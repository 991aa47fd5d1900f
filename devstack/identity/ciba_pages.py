"""The user's side of CIBA on the local provider: the approvals page and the JSON API behind
`warrant approvals`, standing in for the push authenticator (see `devstack/identity/ciba.py`).

The JSON API answers only an authenticator credential: an opaque token that
`POST /api/approvals/authenticator` issues for the user's own CLI refresh token (a token only the
CLI holds), never an access token. The agent server receives the user's access token with every
request; were that token accepted here, the agent could approve its own requests.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
import unicodedata
from collections.abc import Awaitable, Callable
from html import escape
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from devstack.identity import pages
from devstack.identity.ciba import DecisionError

if TYPE_CHECKING:
    from devstack.identity.ciba import CIBAAuthenticator

Endpoint = Callable[[Request], Awaitable[Response]]
HISTORY_SIZE = 10
MAX_BODY_BYTES = 4096  # {"decision": ...} is all the API takes
LONG_VALUE_CHARS = 400  # longer values (or this many lines) get their size said under the box
LONG_VALUE_LINES = 12
AUTHENTICATOR_TOKEN_SECONDS = 600
MAX_AUTHENTICATOR_TOKENS = 10_000  # live credentials kept; the oldest go first past this
_STYLE = (
    "<style>.request{border:1px solid #ccc;border-radius:6px;padding:.2rem 1rem 1rem;"
    "margin:1rem 0}.request h2{font-size:1.15rem}dt{font-weight:600;margin-top:.4rem}"
    "dd{margin-left:0}code{word-break:break-all}table{border-collapse:collapse;width:100%}"
    "td,th{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #eee;font-size:.9rem}"
    ".notice{background:#eef6ee;padding:.5rem}"
    # every argument in full: long values scroll inside their box instead of being cut
    "pre.value{white-space:pre-wrap;overflow-wrap:anywhere;overflow:auto;max-height:20rem;"
    "margin:.2rem 0;padding:.3rem .5rem;background:#f6f6f6;border:1px solid #ddd}"
    ".ctl{background:#fde2e2;color:#900;border-radius:3px;padding:0 .15rem}</style>"
)


def time_left(seconds: float) -> str:
    """`4 min 53 s`, `40 s`: how long a request still waits."""
    seconds = max(0, int(seconds))
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _visible(text: str) -> str:
    """`text` escaped for HTML with every character visible: nothing dropped, nothing hidden.

    Control, format (bidi overrides, zero-width), separator, private and unassigned characters
    would vanish, reorder or be replaced by a browser; each is shown as a marked `U+XXXX`.
    Line feeds and tabs stay as they are (the box keeps line breaks).
    """
    out = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            code = f"U+{ord(ch):04X}"
            out.append(f"<span class='ctl' title='{code}'>[{code}]</span>")
        else:
            out.append(escape(ch))
    return "".join(out)


def _value(value: Any) -> str:
    """One value in full, in a scrollable box; objects as one row per key."""
    if isinstance(value, dict) and value:
        rows = "".join(
            f"<dt>{_visible(str(key))}</dt><dd>{_value(item)}</dd>" for key, item in value.items()
        )
        return f"<dl class='arguments'>{rows}</dl>"
    text = (
        value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    )
    box = f"<pre class='value'>{_visible(text)}</pre>"
    if len(text) <= LONG_VALUE_CHARS and text.count("\n") < LONG_VALUE_LINES:
        return box
    # The box scrolls: say how much there is, so that nobody approves the visible part only.
    lines = text.count("\n") + 1
    return (
        f"{box}<p class='muted value-size'>{len(text):,} characters on {lines:,} "
        f"line{'s' if lines != 1 else ''}: scroll the box to read all of it.</p>"
    )


_DETAIL_LABELS = {"tool": "Tool", "action_digest": "Action digest", "type": "Type"}


def _details(items: list[dict[str, Any]]) -> str:
    """Authorization details (RAR): the tool and the digest of its arguments, then the rest."""
    out = []
    for item in items:
        rows = []
        for key, label in _DETAIL_LABELS.items():
            if key in item:
                rows.append(f"<dt>{label}</dt><dd>{_value(item[key])}</dd>")
        for key, value in item.items():
            if key not in _DETAIL_LABELS:
                rows.append(f"<dt>{_visible(str(key))}</dt><dd>{_value(value)}</dd>")
        out.append(f"<dl class='details'>{''.join(rows)}</dl>")
    return "".join(out)


def _request_card(view: dict[str, Any], csrf: str) -> str:
    details = view["authorization_details"]
    return (
        f"<section class='request' id='{escape(view['id'])}' "
        f"data-approval-id='{escape(view['id'])}'>"
        f"<h2 class='binding-message'>{escape(view['binding_message'])}</h2>"
        f"<p><strong class='client'>{escape(view['client_name'])}</strong> asks for your "
        "approval.</p><dl>"
        f"<dt>Access</dt><dd><code>{escape(view['scope'])}</code> for "
        f"<code>{escape(view['audience'])}</code></dd>"
        f"<dt>Time left</dt><dd class='time-left'>{escape(time_left(view['expires_in']))}</dd>"
        "</dl>"
        f"{_details(details) if details else ''}"
        f"<form method='post' action='/approvals'>{pages.hidden('csrf', csrf)}"
        f"{pages.hidden('id', view['id'])}"
        "<button type='submit' name='decision' value='approve'>Approve</button> "
        "<button type='submit' name='decision' value='deny'>Deny</button></form></section>"
    )


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch)) if epoch else ""


def approvals_page(
    email: str,
    csrf: str,
    pending: list[dict[str, Any]],
    history: list[dict[str, Any]],
    notice: str = "",
) -> str:
    """The signed-in user's pending approval requests and a short history."""
    note = f"<p class='notice' role='status'>{escape(notice)}</p>" if notice else ""
    if pending:
        cards = "".join(_request_card(view, csrf) for view in pending)
    else:
        cards = "<p class='muted' id='none-pending'>No approval requests are waiting for you.</p>"
    rows = "".join(
        f"<tr data-approval-id='{escape(v['id'])}'><td>{escape(v['binding_message'])}</td>"
        f"<td>{escape(v['client_name'])}</td><td class='status'>{escape(v['status'])}</td>"
        f"<td>{escape(_when(v['decided_at'] or v['expires_at']))}</td></tr>"
        for v in history
    )
    past = (
        "<h2>Recent</h2><table id='history'><tr><th>Request</th><th>Client</th><th>Status</th>"
        f"<th>When</th></tr>{rows}</table>"
        if history
        else ""
    )
    return pages.page(
        "Approvals",
        f"{_STYLE}<p class='muted'>Signed in as {escape(email)}. "
        "<a href='/approvals'>Refresh</a></p>"
        f"{note}{cards}{past}",
    )


class AuthenticatorCredentials:
    """Short-lived opaque credentials of the approvals API, kept as hashes, per user."""

    def __init__(self, clock: Callable[[], float], lifetime: float = AUTHENTICATOR_TOKEN_SECONDS):
        self.clock = clock
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._live: dict[str, tuple[str, float]] = {}  # sha256(token) -> (sub, expires_at)

    def issue(self, sub: str) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._live = {h: v for h, v in self._live.items() if v[1] > now}
            while len(self._live) >= MAX_AUTHENTICATOR_TOKENS:
                self._live.pop(next(iter(self._live)))
            self._live[_hash(token)] = (sub, now + self.lifetime)
        return token, int(self.lifetime)

    def user(self, token: str) -> str | None:
        with self._lock:
            found = self._live.get(_hash(token))
        if found is None or found[1] <= self.clock():
            return None
        return found[0]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def routes(
    provider: Any, authenticator: CIBAAuthenticator
) -> list[tuple[str, Endpoint, list[str]]]:
    """The page (`/approvals`) and the JSON API (`/api/approvals`)."""
    credentials = AuthenticatorCredentials(provider.clock)

    def split(user_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        views = [authenticator.view(r) for r in authenticator.requests(user_id)]
        pending = sorted(
            (v for v in views if v["status"] == "pending"), key=lambda v: v["created_at"]
        )
        history = [v for v in views if v["status"] != "pending"][:HISTORY_SIZE]
        return pending, history

    # the page -----------------------------------------------------------------------------------

    async def page(request: Request) -> Response:
        authenticator.remember_loop()
        user = provider.current_user(request)
        if user is None:
            return provider.login_redirect(request)
        pending, history = split(user.sub)
        notice = ""
        decided = authenticator.store.by_id(request.query_params.get("decided", ""))
        if decided is not None and decided.user_id == user.sub and decided.status != "pending":
            notice = f"You {decided.status} “{decided.binding_message}”."
        body = approvals_page(
            user.email, provider.csrf_token(request) or "", pending, history, notice
        )
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    async def decide_form(request: Request) -> Response:
        authenticator.remember_loop()
        user = provider.current_user(request)
        if user is None:
            return HTMLResponse(pages.error_page("Approvals", "Please log in."), status_code=401)
        try:
            _, pairs = await provider.read_params(request)
        except Exception:  # BadRequest and friends: a form this page never sends
            return HTMLResponse(pages.error_page("Approvals", "Malformed form."), status_code=400)
        form = dict(pairs)
        if not provider.check_csrf(request, form.get("csrf")):
            return HTMLResponse(
                pages.error_page("Approvals", "The form expired; please try again."),
                status_code=403,
            )
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            return HTMLResponse(
                pages.error_page("Approvals", "Choose Approve or Deny."), status_code=400
            )
        approval_id = form.get("id", "")
        if authenticator.store.by_id(approval_id) is None:
            return HTMLResponse(
                pages.error_page("Approvals", "No such approval request."), status_code=404
            )
        try:
            authenticator.decide(approval_id, user.sub, decision == "approve")
        except DecisionError as exc:
            return HTMLResponse(pages.error_page("Approvals", str(exc)), status_code=exc.status)
        return RedirectResponse(f"/approvals?decided={approval_id}", status_code=303)

    # the JSON API -------------------------------------------------------------------------------

    def api_error(status: int, error: str, description: str) -> JSONResponse:
        headers = {"Cache-Control": "no-store"}
        if status == 401:
            headers["WWW-Authenticate"] = f'Bearer realm="approvals", error="{error}"'
        return JSONResponse(
            {"error": error, "error_description": description}, status_code=status, headers=headers
        )

    def api_user(request: Request) -> Any:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return api_error(401, "invalid_request", "Missing bearer token.")
        sub = credentials.user(token.strip())
        user = provider.users.get(sub) if sub else None
        if user is None:
            if provider.verify_access_token(token.strip()) is not None:
                # The agent server holds the user's access tokens: they never answer here.
                return api_error(
                    401,
                    "invalid_token",
                    "Approvals take your authenticator credential (warrant approvals), "
                    "not an access token.",
                )
            return api_error(401, "invalid_token", "Invalid or expired authenticator credential.")
        return user

    async def api_enroll(request: Request) -> Response:
        """An authenticator credential for the user behind the CLI's own refresh token."""
        try:
            _, pairs = await provider.read_params(request)
        except Exception:  # BadRequest and friends
            return api_error(400, "invalid_request", "Malformed form.")
        form = dict(pairs)
        client_id = form.get("client_id", "")
        refresh_token = form.get("refresh_token", "")
        if not client_id or not refresh_token:
            return api_error(
                400, "invalid_request", "Missing required parameter: client_id or refresh_token"
            )
        client = provider.clients.get(client_id)
        if client is None or client_id not in authenticator.api_clients:
            # An application (the agent) never enrolls as the user's authenticator.
            return api_error(401, "invalid_client", "This client cannot answer approvals.")
        secret = form.get("client_secret")
        if not client.is_public and not (secret and client.check_client_secret(secret)):
            return api_error(401, "invalid_client", "Client authentication failed.")
        user = provider.user_for_refresh_token(refresh_token, client_id)
        if user is None:
            return api_error(400, "invalid_grant", "Unknown, expired or revoked refresh token.")
        token, expires_in = credentials.issue(user.sub)
        return JSONResponse(
            {"authenticator_token": token, "token_type": "Bearer", "expires_in": expires_in},
            headers={"Cache-Control": "no-store"},
        )

    async def api_list(request: Request) -> Response:
        user = api_user(request)
        if isinstance(user, Response):
            return user
        wanted = request.query_params.get("status")
        views = [authenticator.view(r) for r in authenticator.requests(user.sub)]
        if wanted:
            views = [v for v in views if v["status"] == wanted]
        return JSONResponse(views, headers={"Cache-Control": "no-store"})

    async def api_get(request: Request) -> Response:
        user = api_user(request)
        if isinstance(user, Response):
            return user
        record = authenticator.store.by_id(request.path_params["approval_id"])
        if record is None or record.user_id != user.sub:
            return api_error(404, "not_found", "No such approval request.")
        return JSONResponse(authenticator.view(record), headers={"Cache-Control": "no-store"})

    async def api_decide(request: Request) -> Response:
        authenticator.remember_loop()
        user = api_user(request)
        if isinstance(user, Response):
            return user
        raw = await request.body()
        try:
            body = json.loads(raw) if 0 < len(raw) <= MAX_BODY_BYTES else None
        except ValueError:
            body = None
        decision = body.get("decision") if isinstance(body, dict) else None
        if decision not in ("approve", "deny"):
            return api_error(
                400, "invalid_request", 'The body must be {"decision": "approve" or "deny"}.'
            )
        approval_id = request.path_params["approval_id"]
        if authenticator.store.by_id(approval_id) is None:  # public ids only over HTTP
            return api_error(404, "not_found", "No such approval request.")
        try:
            record = authenticator.decide(approval_id, user.sub, decision == "approve")
        except DecisionError as exc:
            return api_error(exc.status, exc.error, str(exc))
        return JSONResponse(authenticator.view(record), headers={"Cache-Control": "no-store"})

    return [
        ("/approvals", page, ["GET"]),
        ("/approvals", decide_form, ["POST"]),
        ("/api/approvals/authenticator", api_enroll, ["POST"]),
        ("/api/approvals", api_list, ["GET"]),
        ("/api/approvals/{approval_id}", api_get, ["GET"]),
        ("/api/approvals/{approval_id}", api_decide, ["POST"]),
    ]
