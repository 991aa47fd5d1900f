"""The README's "Authorize your own tool" files, extracted from README.md and run as written in
their own processes, against the session devstack: the user approves on the provider while the
script waits, and the secret Gist exists exactly once afterwards."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from auth.login import TOKEN_FILE, TokenFile, TokenSet

ROOT = Path(__file__).resolve().parents[2]
FILES = ("my_tools.py", "with_graph.py", "with_middleware.py")


def readme_files() -> dict[str, str]:
    """`<!-- file: NAME -->` followed by a python block, from the README's section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Authorize your own tool", 1)[1].split("\n## ", 1)[0]
    found = dict(re.findall(r"<!-- file: (\S+) -->\n```python\n(.*?)```", section, re.S))
    assert set(found) == set(FILES)
    return found


def test_the_section_has_the_three_files() -> None:
    files = readme_files()
    assert "declare(" in files["my_tools.py"] and "build_graph(" in files["with_graph.py"]
    assert "WarrantMiddleware()" in files["with_middleware.py"]


@pytest.mark.server
@pytest.mark.parametrize("script", ["with_graph.py", "with_middleware.py"])
async def test_the_readme_example_runs_as_written(world, login_as, tmp_path, script):
    folder = tmp_path / "example"
    folder.mkdir()
    for name, code in readme_files().items():
        (folder / name).write_text(code, encoding="utf-8")
    data = tmp_path / "data"
    login = login_as("alice")
    TokenFile(data / TOKEN_FILE).save(  # what `warrant login` leaves
        TokenSet(
            access_token=login.access_token,
            expires_at=login.expires_at,
            issuer=world.settings.issuer_url,
            client_id=world.settings.cli_client_id,
            audience=world.settings.audience,
            subject=world.sub,
            email="alice@example.com",
            refresh_token=login.refresh_token,
        )
    )
    env = {
        **os.environ,
        **world.stack.env(),
        "PYTHONPATH": str(ROOT),
        "WARRANT_DATA_DIR": str(data),
        "WARRANT_APPROVALS_DB": world.settings.approvals_db,
        "WARRANT_CIBA_DELIVERY_MODE": "poll",
        "WARRANT_MODEL": "offline",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        script,
        cwd=folder,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # the user, on their authenticator: approve the request once it shows up
    approved = None
    for _ in range(600):
        pending = [r for r in world.ciba.pending(world.sub) if "secret note" in r.binding_message]
        if pending:
            approved = world.ciba.decide(pending[0].id, world.sub, True)
            break
        if process.returncode is not None:
            break
        await asyncio.sleep(0.1)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    output = out.decode()
    print(output)  # the example's actual output, for the record
    assert process.returncode == 0, err.decode()[-3000:]
    assert approved is not None
    lines = output.strip().splitlines()
    assert lines[0].startswith("Approve 'Save a secret note")
    assert "save_secret_note" in output and "/gist" in output.replace("gists", "gist")
    note = "save a secret note: " + ("buy milk" if script == "with_graph.py" else "call the bank")
    assert world.gists(note) == 1
