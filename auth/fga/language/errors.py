"""Errors of the model language: syntax errors with positions, and model validation errors."""

from __future__ import annotations

from dataclasses import dataclass

from auth.fga.errors import ErrorCode, FGAError


@dataclass(frozen=True)
class DSLIssue:
    """One problem in a DSL text.

    `line` and `column` are 1-based (the first character of the text is line 1, column 1),
    as editors count; OpenFGA's own tools count both from 0.
    """

    line: int
    column: int
    message: str
    symbol: str = ""

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


class DSLSyntaxError(ValueError):
    """The DSL text is not a valid model; `errors` lists every problem found, in order."""

    def __init__(self, errors: list[DSLIssue]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        head = f"{count} error{'s' if count != 1 else ''} in the model"
        super().__init__(head + ":\n" + "\n".join(f"  - {issue}" for issue in self.errors))


class ModelValidationError(FGAError):
    """An authorization model that OpenFGA's WriteAuthorizationModel would refuse.

    It is an `FGAError`, so callers that already report FGA errors keep OpenFGA's code
    (2056 invalid_authorization_model for most problems, 2000 for request-level ones).
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(ErrorCode(code), message)
