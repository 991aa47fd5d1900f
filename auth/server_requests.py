"""What a client may put in a request to the LangGraph server: the rules the auth handlers apply.

A run (stateful, stateless, or a cron's), an assistant and a cron all carry parts that reach the
graph: `input`, `command`, `config.configurable` and `context`. An assistant's config and context
are merged into every run made with it, and a cron's payload becomes a run, so all of them follow
the same rules here:
- input is absent (a resume through `command`) or `{"messages": [...]}` of new human messages:
  text only, no tool calls, no `id` (an id would replace an existing message, e.g. the pending
  tool call the user is asked to approve);
- a command only resumes (`update` and `goto` would edit state by another door);
- configurable and context only restate who the caller is (`user_id`, `user_email`): no
  checkpoint to restart from, no token (langgraph-api stores both with the run and the
  thread), no other user;
- metadata keys the server reads as facts (`created_by` marks the graph's own assistant to
  langgraph-api) are never taken from a client.
Each refusal is a `RequestRefused` whose message says what was wrong; it never quotes values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from auth.errors import AuthError

# What a client may say in configurable/context: who it is (checked against the token).
CLIENT_CONTEXT_KEYS = frozenset({"user_id", "user_email"})
# Keys langgraph-api itself writes into a run's configurable (a cron's stored payload carries
# them into the runs it starts); clients cannot send the reserved ones (its request schema
# refuses them) and `cron_id` is only a label.
SERVER_CONTEXT_KEYS = frozenset(
    {
        "cron_id",
        "langgraph_auth_user",
        "langgraph_auth_user_id",
        "langgraph_auth_permissions",
        "langgraph_request_id",
        "__after_seconds__",
        "__request_start_time_ms__",
        "__context_provided__",
    }
)
# Where a run would start from an earlier checkpoint (the `checkpoint_id` and `checkpoint`
# request fields land in configurable).
CHECKPOINT_KEYS = ("checkpoint_id", "checkpoint_ns", "checkpoint_map")
# Metadata that langgraph-api and Warrant read as facts about who made a resource.
RESERVED_METADATA_KEYS = ("created_by",)
_HUMAN_ROLES = frozenset({"human", "user"})
_MESSAGE_KEYS = frozenset({"role", "type", "content", "name", "id"})
_EMPTY_EXTRAS = ("additional_kwargs", "response_metadata")


class RequestRefused(AuthError):
    """A request the server will not carry out; `status` is the HTTP status to answer with."""

    status = 403


class NotAllowed(RequestRefused):
    """The request is well formed but asks for something no client may do."""


class MalformedRequest(RequestRefused):
    """The request is not shaped the way the agent reads it."""

    status = 422


def _names(keys: Iterable[str]) -> str:
    return ", ".join(f"'{k}'" for k in sorted(keys))


def check_input(value: Any, *, allow_message_ids: bool = False) -> None:
    """A run's input: absent, or `{"messages": [...]}` holding only new human text messages."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise MalformedRequest(
            'A run\'s input must be an object like {"messages": [{"role": "user", '
            '"content": "..."}]}, or absent when resuming with a command.'
        )
    extra = set(value) - {"messages"}
    if extra:
        raise NotAllowed(f"A run's input may only carry 'messages' (not {_names(extra)}).")
    messages = value.get("messages")
    if not isinstance(messages, list) or not messages:
        raise MalformedRequest("A run's input.messages must be a non-empty list of messages.")
    for index, message in enumerate(messages):
        _check_message(index, message, allow_message_ids)


def _check_message(index: int, message: Any, allow_id: bool) -> None:
    where = f"input.messages[{index}]"
    if isinstance(message, str):
        return  # a bare string is read as a human message
    if isinstance(message, list) and len(message) == 2:
        role, content = message
        if role in _HUMAN_ROLES and isinstance(content, str):
            return
        if role not in _HUMAN_ROLES:
            raise NotAllowed(_only_human(where, role))
        raise MalformedRequest(f"{where}: the content must be text.")
    if not isinstance(message, Mapping):
        raise MalformedRequest(
            f'{where} must be a message object like {{"role": "user", "content": "..."}}.'
        )
    role = message.get("role", message.get("type"))
    if "role" in message and "type" in message and message["role"] != message["type"]:
        raise MalformedRequest(f"{where} names two different roles.")
    if role not in _HUMAN_ROLES:
        raise NotAllowed(_only_human(where, role))
    if "id" in message and not allow_id:
        raise NotAllowed(
            f"{where} carries an 'id': a new message may not name one (it would replace an "
            "existing message of the conversation); leave it out and the server assigns one."
        )
    for key in _EMPTY_EXTRAS:
        if message.get(key) not in (None, {}):
            raise NotAllowed(f"{where}: '{key}' is not accepted in a user message.")
    extra = set(message) - _MESSAGE_KEYS - set(_EMPTY_EXTRAS)
    if extra:
        raise NotAllowed(f"{where}: {_names(extra)} not accepted in a user message.")
    name = message.get("name")
    if name is not None and not isinstance(name, str):
        raise MalformedRequest(f"{where}: 'name' must be text.")
    _check_content(where, message.get("content"))


def _only_human(where: str, role: Any) -> str:
    shown = role if isinstance(role, str) and len(role) <= 40 else "that kind"
    return (
        f"{where} is a '{shown}' message: a run's input may only carry new user messages "
        "(the agent's own messages and tool results come from the agent, never from a client)."
    )


def _check_content(where: str, content: Any) -> None:
    if isinstance(content, str):
        return
    if isinstance(content, list) and content:
        for block in content:
            if isinstance(block, str):
                continue
            if (
                isinstance(block, Mapping)
                and block.get("type") == "text"
                and isinstance(block.get("text"), str)
                and set(block) <= {"type", "text"}
            ):
                continue
            raise MalformedRequest(
                f'{where}: content blocks must be text ({{"type": "text", "text": "..."}}).'
            )
        return
    raise MalformedRequest(f"{where}: 'content' must be text or a list of text blocks.")


def check_command(command: Any) -> None:
    """A run's command may only resume (a nudge); `update` and `goto` would edit state."""
    if command is None:
        return
    if not isinstance(command, Mapping):
        raise MalformedRequest('A run\'s command must be an object like {"resume": ...}.')
    for key in ("update", "goto"):
        if command.get(key) not in (None, [], {}, ""):
            raise NotAllowed(
                f"Editing a thread's state is not allowed (a command with '{key}'); "
                "a command may only resume."
            )
    extra = set(command) - {"resume", "update", "goto"}
    if extra:
        raise NotAllowed(f"A run's command may only resume (not {_names(extra)}).")


def check_configurable(
    configurable: Any, owner: str, *, what: str, identity_only: bool = True
) -> None:
    """A run's or assistant's `config.configurable`: no checkpoint, only the caller's identity.

    `what` names the request in messages ("A run", "An assistant"). A run's configurable also
    holds what langgraph-api adds (request headers, trace ids) before the handlers see it; its
    client part is the run's `context` (the server copies one into the other), so a run passes
    `identity_only=False` and has its context checked instead.
    """
    if configurable is None:
        return
    if not isinstance(configurable, Mapping):
        raise MalformedRequest(f"{what}'s config.configurable must be an object.")
    for key in CHECKPOINT_KEYS:
        if configurable.get(key):
            raise NotAllowed(
                f"Editing a thread's state is not allowed ({what.lower()} from an earlier "
                f"checkpoint: '{key}')."
            )
    if identity_only:
        _check_identity_keys(configurable, owner, what=what, field="config.configurable")


def check_context(context: Any, owner: str, *, what: str) -> None:
    """A run's or assistant's `context`: it may only restate who the caller is."""
    if context is None:
        return
    if not isinstance(context, Mapping):
        raise NotAllowed(
            f"{what}'s context may only restate who you are (a context that is not an object)."
        )
    _check_identity_keys(context, owner, what=what, field="context")


def _check_identity_keys(values: Mapping[str, Any], owner: str, *, what: str, field: str) -> None:
    extra = set(values) - CLIENT_CONTEXT_KEYS - SERVER_CONTEXT_KEYS
    if extra:
        # A token here would be stored with the run, the thread and the assistant: refused
        # outright, whatever the key is called.
        raise NotAllowed(
            f"{what}'s {field} may only restate who you are (user_id, user_email); "
            f"{_names(extra)} not accepted."
        )
    claimed = values.get("user_id")
    if claimed not in (None, "", owner):
        raise NotAllowed(
            f"{what}'s {field} may only restate who you are (a context naming another user)."
        )
    email = values.get("user_email")
    if email is not None and not isinstance(email, str):
        raise MalformedRequest(f"{what}'s {field}: 'user_email' must be text.")


def check_config(config: Any, owner: str, *, what: str, identity_only: bool = True) -> None:
    """A whole `config` object: its configurable follows `check_configurable`."""
    if config is None:
        return
    if not isinstance(config, Mapping):
        raise MalformedRequest(f"{what}'s config must be an object.")
    check_configurable(config.get("configurable"), owner, what=what, identity_only=identity_only)


def check_metadata(metadata: Any, *, what: str, owner_key: str, owner: str | None = None) -> None:
    """Client metadata never sets what the server reads as facts.

    With `owner` (an update), it may not hand the resource to someone else either; on a
    create, the handler overwrites `owner_key` with the caller instead.
    """
    if metadata is None:
        return
    if not isinstance(metadata, Mapping):
        raise MalformedRequest(f"{what}'s metadata must be an object.")
    reserved = [k for k in RESERVED_METADATA_KEYS if k in metadata]
    if reserved:
        raise NotAllowed(
            f"{what}'s metadata may not set {_names(reserved)}: the server sets it for its own "
            "resources only."
        )
    if owner is not None and metadata.get(owner_key, owner) != owner:
        raise NotAllowed(f"{what}'s owner comes from your token; it cannot be given away.")


def check_run_request(kwargs: Any, owner: str, *, studio: bool, what: str = "A run") -> None:
    """The parts of a run (or of a cron's payload) that reach the graph; raises `RequestRefused`.

    Studio, where explicitly enabled on a developer's machine, may edit state (a command's
    `update`/`goto`, an earlier checkpoint, any input); its context is still checked, so a
    token never rides along into stored runs.
    """
    if not isinstance(kwargs, Mapping):
        raise MalformedRequest(f"{what} must be an object.")
    if not studio:
        check_input(kwargs.get("input"))
        check_command(kwargs.get("command"))
        check_config(kwargs.get("config"), owner, what=what, identity_only=False)
    check_context(kwargs.get("context"), owner, what=what)
