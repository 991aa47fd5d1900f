"""The README's commands as a new user types them: outputs that are clear, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

WARRANT = Path(sys.executable).with_name("warrant")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARRANT_")}
    env["WARRANT_DATA_DIR"] = str(tmp_path / "data")
    return env


@pytest.mark.server
def test_ingesting_a_broken_pdf_says_why_without_library_noise(tmp_path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"binary\x00\x01\x02")
    done = subprocess.run(
        [str(WARRANT), "ingest", str(bad), "--owner", "alice@example.com"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "cannot read the pdf file" in done.stderr
    assert "invalid pdf header" not in done.stderr + done.stdout
    assert "EOF marker" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.server
def test_devstack_prints_how_to_log_in_and_writes_a_private_env_file(tmp_path) -> None:
    import signal
    import stat
    import time

    import httpx

    env_file = tmp_path / "devstack.env"
    env = _env(tmp_path)
    env["WARRANT_BOB_PASSWORD"] = "bobs-own-secret"
    process = subprocess.Popen(
        [str(WARRANT), "devstack", "--ephemeral", "--env-file", str(env_file)],
        cwd=tmp_path,
        env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not env_file.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert env_file.exists(), process.stdout.read() if process.poll() is not None else ""
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600  # the agent's secret is in it
        values = dict(
            line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line
        )
        issuer = values["WARRANT_ISSUER"]
        assert httpx.get(issuer + ".well-known/openid-configuration").json()["issuer"] == issuer
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert "alice@example.com  password alice-password" in out  # the public default
    assert "bobs-own-secret" not in out and "your WARRANT_BOB_PASSWORD" in out
    assert "GitHub login: alice" in out
    assert "Traceback" not in out
