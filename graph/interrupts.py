"""The interrupts the Warrant graph raises, typed: one pydantic model and JSON schema per type.

Studio and other clients render a pending interrupt by its `type` and validate it against
`interrupt_schemas()[type]`; `RESUME_VALUES` says what each accepts back. Whatever a resume
carries, it is a nudge: the graph asks the authority again (the Token Vault, the identity
provider); the only decision a resume value can make is to cancel, which does less, never more.

- `connection_required` (the `tools` or `approval` node; the user has not connected the account
  the tool needs at the Token Vault). Resume with any value (e.g. `"connected"`) after
  connecting at `connect_url`: the vault is asked again, and the same interrupt comes back while
  the account is still not connected; a cancel value gives up and the tool does nothing.
- `approval_pending` (the `approval` node; the request was pushed to the user's authenticator
  with CIBA). Resume with any value (the callback and the poller send `{"wake": true,
  "approval_id": ...}`): the provider is asked for the decision; still pending -> the same
  interrupt again; approved -> the tool runs once; a cancel value cancels the request.

Cancel values: the strings `cancel`, `cancelled`, `canceled`, `abort`, `no`, `skip` (any case),
or an object `{"cancel": true}` or `{"action": "cancel"}`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graph.nodes.tools import CANCEL_VALUES


class _Interrupt(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConnectionRequiredInterrupt(_Interrupt):
    """The tool needs a connected account (Token Vault) that the user has not connected."""

    type: Literal["connection_required"]
    connection: str = Field(description="The connection's name at the identity provider.")
    scopes: list[str] = Field(description="The scopes the tool asks for.")
    missing_scopes: list[str] = Field(description="Scopes the existing connection lacks.")
    connect_url: str = Field(description="Where the user connects the account (a browser page).")
    tool: str = Field(description="The tool waiting for the connection.")
    message: str = Field(description="A sentence to show the user.")


class ApprovalPendingInterrupt(_Interrupt):
    """The tool changes the world: the user approves this exact call on their authenticator."""

    type: Literal["approval_pending"]
    approval_id: str = Field(description="The approvals ledger's id for this action.")
    binding_message: str = Field(
        description="What the authenticator shows, ending with a digest of the arguments."
    )
    expires_at: float | None = Field(description="When the request expires (Unix seconds).")
    tool: str = Field(description="The tool that would run.")
    arguments: dict[str, Any] = Field(
        description="Exactly the arguments the tool would run with, once approved."
    )
    action_digest: str = Field(description="The digest of tool and arguments the approval binds.")
    message: str = Field(description="A sentence to show the user.")


INTERRUPT_MODELS: dict[str, type[_Interrupt]] = {
    "connection_required": ConnectionRequiredInterrupt,
    "approval_pending": ApprovalPendingInterrupt,
}

RESUME_VALUES: dict[str, str] = {
    "connection_required": (
        "Any value once the account is connected (the Token Vault is asked again); a cancel "
        "value gives up and the tool does nothing."
    ),
    "approval_pending": (
        'Any value, conventionally {"wake": true}: the identity provider is asked for the '
        "decision (a resume never approves); a cancel value cancels the request."
    ),
}

CANCEL = sorted(CANCEL_VALUES)


class UnknownInterrupt(ValueError):
    """An interrupt payload whose `type` this module does not describe."""


def interrupt_schemas() -> dict[str, dict[str, Any]]:
    """The JSON schema of each interrupt type, by type."""
    return {name: model.model_json_schema() for name, model in INTERRUPT_MODELS.items()}


def parse_interrupt(value: Any) -> _Interrupt:
    """Validate an interrupt payload against its type's model (raises on any mismatch)."""
    kind = value.get("type") if isinstance(value, dict) else None
    model = INTERRUPT_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise UnknownInterrupt(f"not a Warrant interrupt: {kind!r}")
    return model.model_validate(value)


__all__ = [
    "CANCEL",
    "INTERRUPT_MODELS",
    "RESUME_VALUES",
    "ApprovalPendingInterrupt",
    "ConnectionRequiredInterrupt",
    "UnknownInterrupt",
    "interrupt_schemas",
    "parse_interrupt",
]
