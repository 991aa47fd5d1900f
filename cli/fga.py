"""`warrant fga`: OpenFGA models and store test files offline, and the configured store's tuples.

`transform` and `test` work on files with the embedded parser and engine (no server, no
account); `check`, `write`, `delete`, `read`, `list-objects`, `list-users` and `write-model`
talk to the store the settings configure (`make_fga_client`: the local SQLite store, or an
OpenFGA server / Okta FGA). Every failure is one clear line on stderr and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import glob
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from auth.errors import AuthError
from auth.fga.client import FGAClient, TupleKey
from auth.fga.errors import FGAError

T = TypeVar("T")

fga_app = typer.Typer(
    no_args_is_help=True,
    help="OpenFGA models, store tests and tuples (embedded engine or an OpenFGA server).",
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=1)


def _read_model_file(path: Path) -> dict[str, Any]:
    from auth.fga.storetest import StoreTestFileError, read_model_file

    try:
        return read_model_file(path)
    except StoreTestFileError as e:
        raise _fail(str(e)) from None


@fga_app.command("transform")
def transform(
    file: Path = typer.Argument(..., help="A model in OpenFGA's DSL (.fga)."),
    pretty: bool = typer.Option(False, "--pretty", help="Indent the JSON."),
) -> None:
    """Print the model's JSON, as `fga model transform` does."""
    from auth.fga.language import compact

    model = compact(_read_model_file(file))
    if pretty:
        typer.echo(json.dumps(model, indent=2))
    else:
        typer.echo(json.dumps(model, separators=(",", ":")))


@fga_app.command("test")
def test(
    files: list[str] = typer.Argument(..., help="Store test files (.fga.yaml), or globs."),
    verbose: bool = typer.Option(False, "--verbose", help="Print every result as JSON."),
    suppress_summary: bool = typer.Option(False, "--suppress-summary", help="No text summary."),
) -> None:
    """Run store test files on the embedded engine, as `fga model test` does; exit 1 on failure."""
    from auth.fga import storetest

    paths: list[Path] = []
    for pattern in files:
        matched = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not matched:
            raise _fail(f"no file matches {pattern}")
        paths += [Path(p) for p in matched]
    failed = False
    for path in paths:
        try:
            results = storetest.run_file(path)
        except storetest.StoreTestFileError as e:
            typer.echo(f"Error: {path}: {e}", err=True)
            failed = True
            continue
        if verbose:
            typer.echo(json.dumps([r.to_json() for r in results]))
        if not suppress_summary:
            if len(paths) > 1:
                typer.echo(f"# {path}")
            typer.echo(storetest.report(results))
        failed = failed or not all(r.passing for r in results)
    if failed:
        raise typer.Exit(code=1)


# ------------------------------------------------------------------------------------------------
# the configured store


def _with_client(action: Callable[[FGAClient], Awaitable[T]]) -> T:
    from auth.fga.factory import make_fga_client

    async def run() -> T:
        try:
            client = make_fga_client()
        except ValueError as e:
            raise _fail(str(e)) from None
        try:
            return await action(client)
        finally:
            await client.close()

    try:
        return asyncio.run(run())
    except FGAError as e:
        raise _fail(str(e)) from None
    except AuthError as e:  # ProviderUnavailable: the server is down, slow or refusing us
        raise _fail(str(e)) from None


def _json_option(value: str | None, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise _fail(f"{what} is not valid JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise _fail(f"{what} must be a JSON object")
    return parsed


def _contextual(values: list[str] | None) -> list[TupleKey]:
    out = []
    for value in values or []:
        parts = value.split()
        if len(parts) != 3:
            raise _fail(f"contextual tuple {value!r}: write it as 'USER RELATION OBJECT'")
        out.append(TupleKey(*parts))
    return out


ContextOption = typer.Option(None, "--context", help="Request context as a JSON object.")
ContextualOption = typer.Option(
    None, "--contextual-tuple", help="'USER RELATION OBJECT', repeatable."
)


@fga_app.command("check")
def check(
    user: str,
    relation: str,
    object: str,
    context: str | None = ContextOption,
    contextual_tuple: list[str] | None = ContextualOption,
    agent: str | None = typer.Option(
        None, "--agent", help="Ask as this agent acting for USER: the user's delegation is needed."
    ),
) -> None:
    """May USER have RELATION on OBJECT? Prints {"allowed": true|false} (exit 0 either way)."""
    from auth.delegation import DelegatedFGA, DelegationError

    ctx = _json_option(context, "--context")
    extra = _contextual(contextual_tuple)

    async def ask(c: FGAClient) -> bool:
        client = DelegatedFGA(c, agent) if agent is not None else c
        return await client.check(user, relation, object, contextual_tuples=extra, context=ctx)

    try:
        allowed = _with_client(ask)
    except DelegationError as e:
        raise _fail(str(e)) from None
    typer.echo(json.dumps({"allowed": allowed}))


def _tuple_from_args(
    user: str, relation: str, object: str, condition: str | None, condition_context: str | None
) -> TupleKey:
    ctx = _json_option(condition_context, "--condition-context")
    if ctx is not None and not condition:
        raise _fail("--condition-context needs --condition")
    return TupleKey(user, relation, object, condition or None, ctx)


@fga_app.command("write")
def write(
    user: str | None = typer.Argument(None),
    relation: str | None = typer.Argument(None),
    object: str | None = typer.Argument(None),
    condition: str | None = typer.Option(None, "--condition", help="A condition's name."),
    condition_context: str | None = typer.Option(
        None, "--condition-context", help="The condition's stored context (JSON object)."
    ),
    file: Path | None = typer.Option(None, "--file", help="Write the tuples of a YAML/JSON file."),
) -> None:
    """Write one tuple (or, with --file, a file's tuples in requests of 100)."""
    if file is not None:
        if user or relation or object:
            raise _fail("give either USER RELATION OBJECT or --file, not both")
        tuples = _tuples_file(file)
    elif user and relation and object:
        tuples = [_tuple_from_args(user, relation, object, condition, condition_context)]
    else:
        raise _fail("write needs USER RELATION OBJECT (or --file FILE)")

    async def action(client: FGAClient) -> int:
        for start in range(0, len(tuples), 100):
            try:
                await client.write(tuples[start : start + 100])
            except FGAError as e:
                if start == 0:
                    raise
                # each request is atomic; say how far the file got so nothing is guessed
                raise FGAError(
                    e.code, f"{e.message} (tuples 1-{start} were written, the rest were not)"
                ) from None
        return len(tuples)

    count = _with_client(action)
    typer.echo(json.dumps({"written": count}))


@fga_app.command("delete")
def delete(user: str, relation: str, object: str) -> None:
    """Delete one tuple."""
    _with_client(lambda c: c.write(deletes=[TupleKey(user, relation, object)]))
    typer.echo(json.dumps({"deleted": 1}))


def _tuples_file(path: Path) -> list[TupleKey]:
    import yaml

    from auth.fga.storetest import StoreTestFileError, parse_tuple

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise _fail(f"cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise _fail(f"{path} is not valid YAML/JSON: {e}") from None
    if not isinstance(data, list):
        raise _fail(f"{path} must hold a list of tuples")
    try:
        return [parse_tuple(t, str(path)) for t in data]
    except StoreTestFileError as e:
        raise _fail(str(e)) from None


@fga_app.command("read")
def read(
    user: str | None = typer.Option(None, "--user"),
    relation: str | None = typer.Option(None, "--relation"),
    object: str | None = typer.Option(None, "--object", help="'type:id' or 'type:'."),
) -> None:
    """Print the stored tuples matching the filter, one JSON object a line."""
    tuples = _with_client(lambda c: c.read(user=user, relation=relation, object=object))
    for t in tuples:
        row: dict[str, Any] = {"user": t.user, "relation": t.relation, "object": t.object}
        if t.condition_name:
            row["condition"] = {"name": t.condition_name, "context": t.condition_context or {}}
        typer.echo(json.dumps(row))


@fga_app.command("list-objects")
def list_objects(
    user: str,
    relation: str,
    type: str,
    context: str | None = ContextOption,
    contextual_tuple: list[str] | None = ContextualOption,
) -> None:
    """Objects of TYPE on which USER has RELATION."""
    ctx = _json_option(context, "--context")
    extra = _contextual(contextual_tuple)
    objects = _with_client(
        lambda c: c.list_objects(user, relation, type, contextual_tuples=extra, context=ctx)
    )
    typer.echo(json.dumps({"objects": sorted(objects)}))


@fga_app.command("list-users")
def list_users(
    object: str,
    relation: str,
    user_filter: str = typer.Argument(..., help="'type' or 'type#relation'."),
    context: str | None = ContextOption,
) -> None:
    """Users (of the filter's type) that have RELATION on OBJECT."""
    ctx = _json_option(context, "--context")
    users = _with_client(lambda c: c.list_users(object, relation, [user_filter], context=ctx))
    typer.echo(json.dumps({"users": sorted(users)}))


@fga_app.command("write-model")
def write_model(file: Path = typer.Argument(..., help="A model (.fga DSL or .json).")) -> None:
    """Store a new model version in the configured store; prints its id."""
    model = _read_model_file(file)

    async def action(client: FGAClient) -> str:
        writer = getattr(client, "write_model", None)
        if writer is None:
            raise _fail("this FGA backend cannot write models")
        return str(await writer(model))

    model_id = _with_client(action)
    typer.echo(json.dumps({"authorization_model_id": model_id}))


def register(app: typer.Typer) -> None:
    """Add the `fga` command group to the `warrant` command."""
    app.add_typer(fga_app, name="fga")
