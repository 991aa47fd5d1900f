"""`warrant demo` (the offline scenario, for people or `--json`) and `warrant dev`."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console

from settings import Settings, get_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
LANGGRAPH_PORT = 2024


def _configure_logging(verbose: bool) -> None:
    """Logs to stderr (stdout is the report), INFO at most: some libraries log secrets at DEBUG.

    Only when nothing configured logging yet (a host such as pytest keeps its own handlers).
    """
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every URL at INFO, authorization codes in callback URLs included
    logging.getLogger("httpx").setLevel(logging.WARNING)


def demo(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    model: str = typer.Option(
        None, "--model", help="Chat model for this run (default: WARRANT_MODEL, `offline`)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="INFO logs on stderr."),
    server: bool = typer.Option(
        False, "--server", help="Run every step through a real `langgraph dev` subprocess."
    ),
) -> None:
    """Run the offline demo end to end: login, GitHub via Token Vault, documents, approvals."""
    from rich.markup import escape

    from devstack.demo import DemoReport, StepResult, run_demo

    if server:
        from devstack.demo.served import run_served_demo as run_demo

    _configure_logging(verbose)
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)

    def show(step: StepResult) -> None:
        mark = "[green]✓[/green]" if step.ok else "[red]✗[/red]"
        target = err if as_json else out
        if as_json:  # progress for a person watching; stdout stays one JSON object
            target.print(f"{mark} {step.name} ({step.seconds:.1f} s)")
        else:
            target.print(
                f"{mark} [bold]{step.name}[/bold] ({step.seconds:.1f} s): {escape(step.detail)}"
            )

    if not as_json:
        spec = model or get_settings().model
        where = "offline devstack and `langgraph dev`" if server else "offline devstack"
        out.print(f"[bold]warrant demo[/bold]: {where}, chat model {spec}")
    try:
        report = asyncio.run(run_demo(model=model, on_step=show, log_level="warning"))
    except Exception as exc:  # a bug outside every step: still one report, still no traceback
        logging.getLogger(__name__).warning("the demo failed", exc_info=True)
        report = DemoReport(model=model or get_settings().model)
        failure = StepResult("demo", False, f"failed unexpectedly: {type(exc).__name__}")
        report.steps.append(failure)
        show(failure)
    if as_json:
        sys.stdout.write(json.dumps(report.as_json(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        passed = sum(step.ok for step in report.steps)
        verdict = "[green]all passed[/green]" if report.ok else "[red]failed[/red]"
        offline = report.model == "offline"
        note = " (the offline model: deterministic, no language model)" if offline else ""
        out.print(
            f"{verdict}: {passed}/{len(report.steps)} steps in {report.seconds:.1f} s; "
            f"model {report.model}{note}"
        )
    raise typer.Exit(0 if report.ok else 1)


def langgraph_config(explicit: Path | None = None) -> Path:
    """The `langgraph.json` to serve: the given one, the working directory's, or the project's."""
    if explicit is not None:
        return explicit.resolve()
    here = Path.cwd() / "langgraph.json"
    return here if here.is_file() else REPO_ROOT / "langgraph.json"


def langgraph_command(config: Path, port: int) -> list[str]:
    """`langgraph dev` on loopback, no browser, from this environment's own installation;
    with reload, as a developer wants it."""
    from devstack.demo.langgraph_dev import langgraph_dev_command

    return langgraph_dev_command(port, reload=True, config=config)


def callback_url(port: int) -> str | None:
    """The agent's CIBA ping route on the LangGraph server, when the project has one."""
    try:
        if importlib.util.find_spec("graph.callbacks") is None:
            return None
    except ModuleNotFoundError:
        return None
    from graph.callbacks import CALLBACK_PATH

    return f"http://127.0.0.1:{port}{CALLBACK_PATH}"


def dev_settings(settings: Settings, port: int, delivery: str) -> Settings:
    """The devstack's settings for `warrant dev`: CIBA results pinged to the server's route."""
    url = callback_url(port) if delivery == "ping" else None
    if url is None:
        return settings.model_copy(update={"ciba_delivery_mode": "poll"})
    return settings.model_copy(
        update={"ciba_delivery_mode": "ping", "ciba_notification_endpoint": url}
    )


def server_environment(stack_env: dict[str, str], settings: Settings) -> dict[str, str]:
    """The environment of `langgraph dev`: this one, the devstack's WARRANT_* and offline flags."""
    from devstack.demo.langgraph_dev import OFFLINE_ENV

    env = {**os.environ, **stack_env, **OFFLINE_ENV}
    env["WARRANT_CIBA_DELIVERY_MODE"] = settings.ciba_delivery_mode
    if settings.ciba_notification_endpoint:
        env["WARRANT_CIBA_NOTIFICATION_ENDPOINT"] = settings.ciba_notification_endpoint
    return env


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether `langgraph dev` can listen on `port` (its own test: a bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt


def _stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int | None:
    """Stop `langgraph dev` and its workers (its own process group) as Ctrl-C would; its exit
    code."""
    from devstack.demo.langgraph_dev import stop_process_group

    return stop_process_group(process, first=signal.SIGINT, timeout=timeout)


def dev(
    port: int = typer.Option(LANGGRAPH_PORT, "--port", help="Port of `langgraph dev`."),
    config: Path = typer.Option(
        None, "--config", help="langgraph.json (default: ./langgraph.json, else the project's)."
    ),
    delivery: str = typer.Option(
        "ping",
        "--ciba-delivery",
        help="How the devstack provider delivers approvals: ping (to the server) or poll.",
    ),
    log_level: str = typer.Option("warning", help="uvicorn log level of the devstack."),
) -> None:
    """Run the devstack (fixed ports) and `langgraph dev`, set up for each other, until Ctrl-C."""
    from devstack.server import DevStack

    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False)
    if delivery not in ("ping", "poll"):
        errors.print("[red]error:[/red] --ciba-delivery must be ping or poll")
        raise typer.Exit(2)
    config_path = langgraph_config(config)
    if not config_path.is_file():
        errors.print(f"[red]error:[/red] no langgraph.json at {config_path}")
        raise typer.Exit(2)
    if not port_is_free(port):
        # `langgraph dev` would quietly move to another port, and the devstack's approval pings
        # (and the address printed here) would point at whatever holds this one.
        errors.print(
            f"[red]error:[/red] port {port} on 127.0.0.1 is in use (another `langgraph dev`?); "
            "stop it or choose another port with --port."
        )
        raise typer.Exit(1)
    settings = dev_settings(get_settings(), port, delivery)
    stack = DevStack(settings, log_level=log_level)
    try:
        stack.start()
    except (OSError, RuntimeError) as exc:
        errors.print(
            f"[red]error:[/red] the devstack could not start ({exc}); is another devstack "
            "running on its ports?"
        )
        raise typer.Exit(1) from None
    code = 1
    try:
        console.print(f"[bold]identity provider[/bold]  {stack.issuer}")
        if stack.github_url:
            console.print(f"[bold]GitHub API[/bold]         {stack.github_url}")
        if stack.fga_url:
            console.print(f"[bold]OpenFGA API[/bold]        {stack.fga_url}")
        console.print(f"[bold]approvals[/bold]          {stack.issuer}approvals")
        console.print(
            f"[bold]langgraph dev[/bold]      http://127.0.0.1:{port}  "
            f"(CIBA delivery: {settings.ciba_delivery_mode}; Ctrl-C stops both)"
        )
        env = server_environment(stack.env(), settings)
        process = subprocess.Popen(
            langgraph_command(config_path, port),
            cwd=config_path.parent,
            env=env,
            start_new_session=True,  # its own group: stopping it stops its workers too
        )
        previous = signal.signal(signal.SIGTERM, _interrupted)
        try:
            code = process.wait()  # langgraph dev ended on its own: its exit code
        except KeyboardInterrupt:
            code = 0  # Ctrl-C or SIGTERM: a normal stop
        finally:
            signal.signal(signal.SIGTERM, previous)
            _stop(process)
    finally:
        stack.stop()
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add `warrant demo` and `warrant dev` to the CLI."""
    app.command("demo")(demo)
    app.command("dev")(dev)
