"""The provider's HTML pages (login, device activation, errors): plain, escaped, no scripts."""

from __future__ import annotations

from html import escape

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}"
    "label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.4rem}"
    "button{margin-top:1rem;padding:.5rem 1rem}.error{color:#b00020}.muted{color:#555}"
)


def page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def hidden(name: str, value: str) -> str:
    return f"<input type='hidden' name='{escape(name)}' value='{escape(value)}'>"


def login_page(state: str, *, email: str = "", error: str = "", client_name: str = "") -> str:
    note = f"<p class='muted'>to continue to {escape(client_name)}</p>" if client_name else ""
    err = f"<p class='error' role='alert'>{escape(error)}</p>" if error else ""
    return page(
        "Log in",
        f"{note}{err}<form method='post' action='/u/login'>{hidden('state', state)}"
        "<label for='email'>Email address</label>"
        f"<input id='email' name='email' type='email' value='{escape(email)}' required>"
        "<label for='password'>Password</label>"
        "<input id='password' name='password' type='password' required>"
        "<button type='submit' name='action' value='default'>Continue</button></form>",
    )


def error_page(title: str, message: str) -> str:
    return page(title, f"<p class='error' role='alert'>{escape(message)}</p>")


def activate_entry_page(csrf: str, *, user_code: str = "", error: str = "") -> str:
    err = f"<p class='error' role='alert'>{escape(error)}</p>" if error else ""
    return page(
        "Device activation",
        f"{err}<p>Enter the code displayed on your device.</p>"
        f"<form method='get' action='/activate'>"
        "<label for='user_code'>Code</label>"
        f"<input id='user_code' name='user_code' value='{escape(user_code)}' required>"
        "<button type='submit'>Continue</button></form>",
    )


def activate_confirm_page(
    csrf: str, user_code: str, client_name: str, scopes: list[str], email: str
) -> str:
    items = "".join(f"<li>{escape(s)}</li>" for s in scopes) or "<li>(no scopes)</li>"
    return page(
        "Confirm device",
        f"<p>Signed in as {escape(email)}.</p>"
        f"<p><strong>{escape(client_name)}</strong> asks for access with the code "
        f"<code>{escape(user_code)}</code>:</p><ul>{items}</ul>"
        f"<form method='post' action='/activate'>{hidden('csrf', csrf)}"
        f"{hidden('user_code', user_code)}"
        "<button type='submit' name='decision' value='approve'>Approve</button> "
        "<button type='submit' name='decision' value='deny'>Deny</button></form>",
    )


def message_page(title: str, message: str) -> str:
    return page(title, f"<p>{escape(message)}</p>")
