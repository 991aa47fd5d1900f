"""Conditions: OpenFGA's typed CEL parameters and evaluation, on cel-python (`celpy`).

A tuple's condition is evaluated with the tuple's context merged with the request's context;
the tuple's values win (a caller cannot override what was written). A declared parameter that
neither supplies is an error (2000), as in OpenFGA (even one the expression would not reach).
"""

from __future__ import annotations

import datetime
import importlib
import ipaddress
import math
import threading
from typing import Any

from auth.fga.errors import ErrorCode, FGAError


class _LazyModule:
    """A module imported on first attribute use: cel-python costs start-up time that store
    tests and checks without conditions never need."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


celpy: Any = _LazyModule("celpy")
celtypes: Any = _LazyModule("celpy.celtypes")

_env: Any = None  # celpy's Environment builds its parser (a quarter second): on first use
_lock = threading.Lock()
_programs: dict[str, Any] = {}


class IPAddress:
    """CEL value of OpenFGA's `ipaddress` parameter type (supports `.in_cidr("10.0.0.0/8")`)."""

    def __init__(self, value: str) -> None:
        self.address = ipaddress.ip_address(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IPAddress) and other.address == self.address

    def __hash__(self) -> int:
        return hash(self.address)


def _in_cidr(ip: Any, cidr: Any) -> celtypes.BoolType:
    if not isinstance(ip, IPAddress):
        raise TypeError("in_cidr applies to an ipaddress")
    network = ipaddress.ip_network(str(cidr), strict=False)
    return celtypes.BoolType(ip.address in network)


def _ipaddress(value: Any) -> IPAddress:
    """`ipaddress("192.0.0.1")`: OpenFGA's constructor, so addresses compare with `==`/`!=`."""
    try:
        return IPAddress(str(value))
    except ValueError:
        raise ValueError(f"invalid ipaddress '{value}'") from None


_FUNCTIONS = {"in_cidr": _in_cidr, "ipaddress": _ipaddress}


def _error(condition: str, message: str) -> FGAError:
    return FGAError(ErrorCode.validation_error, f"condition '{condition}': {message}")


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        return int(v.strip())
    raise ValueError


def _convert(value: Any, type_info: dict[str, Any]) -> Any:
    """One JSON value to the CEL value of a parameter type; ValueError if it does not fit."""
    name = str(type_info.get("type_name", "")).removeprefix("TYPE_NAME_")
    generics = type_info.get("generic_types") or []
    if name == "ANY":
        return celpy.json_to_cel(value)
    if name == "BOOL":
        if isinstance(value, bool):
            return celtypes.BoolType(value)
        raise ValueError
    if name == "STRING":
        if isinstance(value, str):
            return celtypes.StringType(value)
        raise ValueError
    if name == "INT":
        n = _to_int(value)
        if not -(2**63) <= n < 2**63:
            raise ValueError
        return celtypes.IntType(n)
    if name == "UINT":
        n = _to_int(value)
        if not 0 <= n < 2**64:
            raise ValueError
        return celtypes.UintType(n)
    if name == "DOUBLE":
        if isinstance(value, bool):
            raise ValueError
        f = float(value)
        if math.isnan(f) and not isinstance(value, float):
            raise ValueError
        return celtypes.DoubleType(f)
    if name == "DURATION":
        if not isinstance(value, str):
            raise ValueError
        return celtypes.DurationType(value)
    if name == "TIMESTAMP":
        if not isinstance(value, str):
            raise ValueError
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError
        return celtypes.TimestampType(parsed)
    if name == "IPADDRESS":
        if not isinstance(value, str):
            raise ValueError
        return IPAddress(value)
    if name == "LIST":
        if not isinstance(value, list):
            raise ValueError
        inner = generics[0] if generics else {"type_name": "TYPE_NAME_ANY"}
        return celtypes.ListType([_convert(v, inner) for v in value])
    if name == "MAP":
        if not isinstance(value, dict):
            raise ValueError
        inner = generics[0] if generics else {"type_name": "TYPE_NAME_ANY"}
        return celtypes.MapType(
            {celtypes.StringType(str(k)): _convert(v, inner) for k, v in value.items()}
        )
    raise ValueError


def _type_label(type_info: dict[str, Any]) -> str:
    name = str(type_info.get("type_name", "")).removeprefix("TYPE_NAME_").lower()
    generics = type_info.get("generic_types") or []
    if generics:
        return f"{name}<{_type_label(generics[0])}>"
    return name


def cast_context(condition: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The declared parameters present in `context`, as CEL values (2000 if one does not fit)."""
    out: dict[str, Any] = {}
    for key, type_info in condition.parameters.items():
        if key not in context:
            continue
        try:
            out[key] = _convert(context[key], type_info)
        except (ValueError, TypeError, OverflowError):
            raise _error(
                condition.name,
                f"failed to convert context parameter '{key}': "
                f"expected a value of type {_type_label(type_info)}",
            ) from None
    return out


def _program(expression: str) -> Any:
    global _env
    with _lock:
        program = _programs.get(expression)
        if program is None:
            if _env is None:
                _env = celpy.Environment()
            ast = _env.compile(expression)
            program = _env.program(ast, functions=_FUNCTIONS)
            _programs[expression] = program
        return program


def compile_check(name: str, expression: str) -> str | None:
    """A reason why the expression does not compile, or None (used when a model is written)."""
    try:
        _program(expression)
    except Exception as e:  # celpy raises several types for syntax errors
        first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
        return f"condition '{name}' does not compile: {first_line[:200]}"
    return None


def evaluate(
    condition: Any,
    tuple_context: dict[str, Any] | None,
    request_context: dict[str, Any] | None,
    tuple_string: str = "",
) -> bool:
    """Whether the condition is met; FGAError(2000) if a parameter is missing or malformed.

    As OpenFGA: every declared parameter must be supplied by the tuple or the request, whether
    or not the expression would reach it.
    """
    merged: dict[str, Any] = dict(request_context or {})
    merged.update(tuple_context or {})  # the tuple's own context takes precedence
    missing = sorted(k for k in condition.parameters if k not in merged)
    if missing:
        where = f"tuple '{tuple_string}' " if tuple_string else ""
        raise FGAError(
            ErrorCode.validation_error,
            f"failed to evaluate relationship condition: '{condition.name}' - "
            f"{where}is missing context parameters '[{' '.join(missing)}]'",
        )
    activation = cast_context(condition, merged)
    try:
        program = _program(condition.expression)
    except Exception:
        raise _error(condition.name, "the expression does not compile") from None
    try:
        result = program.evaluate(activation)
    except Exception:
        raise _error(condition.name, "failed to evaluate the expression") from None
    if isinstance(result, Exception):
        raise _error(condition.name, "failed to evaluate the expression")
    if not isinstance(result, (bool, celtypes.BoolType)):
        raise _error(condition.name, "the expression did not evaluate to a bool")
    return bool(result)
