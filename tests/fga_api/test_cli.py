"""`warrant fga`: store test files, transform, and the configured store, through typer's runner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from settings import get_settings
from tests.fga_api.helpers import MODEL, ServerThread

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("WARRANT_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["fga", *args])


def _store_test(tmp_path: Path, tests: list[dict], tuples: list[dict] | None = None) -> Path:
    (tmp_path / "model.json").write_text(json.dumps(MODEL))
    spec = {"name": "cli", "model_file": "./model.json", "tuples": tuples or [], "tests": tests}
    path = tmp_path / "store.fga.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


TUPLES = [
    {"user": "user:anne", "relation": "owner", "object": "document:1"},
    {
        "user": "user:bob",
        "relation": "viewer",
        "object": "document:1",
        "condition": {"name": "weekday"},
    },
    {"user": "user:anne", "relation": "member", "object": "group:eng"},
    {"user": "group:eng#member", "relation": "viewer", "object": "document:2"},
]


def test_passing_store_test_file(tmp_path: Path) -> None:
    path = _store_test(
        tmp_path,
        [
            {
                "name": "views",
                "check": [
                    {"user": "user:anne", "object": "document:1", "assertions": {"viewer": True}},
                    {
                        "user": "user:bob",
                        "object": "document:1",
                        "context": {"day": "sunday"},
                        "assertions": {"viewer": False},
                    },
                ],
                "list_objects": [
                    {
                        "user": "user:anne",
                        "type": "document",
                        "assertions": {"viewer": ["document:2", "document:1"]},
                    }
                ],
                "list_users": [
                    {
                        "object": "document:2",
                        "user_filter": [{"type": "user"}],
                        "assertions": {"viewer": {"users": ["user:anne"]}},
                    }
                ],
            },
            {
                "name": "own tuples",
                "tuples": [{"user": "user:carl", "relation": "owner", "object": "document:3"}],
                "check": [
                    {"user": "user:carl", "object": "document:3", "assertions": {"viewer": True}}
                ],
            },
        ],
        TUPLES,
    )
    result = _invoke("test", str(path))
    assert result.exit_code == 0, result.output
    assert "Tests 2/2 passing" in result.output
    assert "Checks 3/3 passing" in result.output
    assert "ListObjects 1/1 passing" in result.output
    assert "ListUsers 1/1 passing" in result.output


def test_failing_store_test_file_exits_non_zero(tmp_path: Path) -> None:
    path = _store_test(
        tmp_path,
        [
            {
                "name": "wrong",
                "check": [
                    {"user": "user:anne", "object": "document:2", "assertions": {"viewer": False}},
                    {"user": "user:bob", "object": "document:1", "assertions": {"viewer": True}},
                ],
            }
        ],
        TUPLES,
    )
    result = _invoke("test", str(path))
    assert result.exit_code == 1
    assert "(FAILING) wrong: Checks (0/2 passing)" in result.output
    assert (
        "ⅹ Check(user=user:anne,relation=viewer,object=document:2): expected=false, got=true"
        in result.output
    )
    # a condition without its parameter is an error, reported as such
    assert "expected=true, got=N/A, error=" in result.output
    assert "Tests 0/1 passing" in result.output


def test_verbose_prints_json_results(tmp_path: Path) -> None:
    path = _store_test(
        tmp_path,
        [
            {
                "name": "t",
                "check": [
                    {"user": "user:anne", "object": "document:1", "assertions": {"owner": True}}
                ],
            }
        ],
        TUPLES,
    )
    result = _invoke("test", str(path), "--verbose", "--suppress-summary")
    assert result.exit_code == 0
    parsed = json.loads(result.output)
    assert parsed[0]["check_results"][0]["got"] is True
    assert parsed[0]["check_results"][0]["test_result"] is True


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tests: [", "not valid YAML"),
        ("- just a list", "YAML mapping"),
        ("tests: []", "neither `model` nor `model_file`"),
        ("model_file: ./missing.fga\ntests: []", "cannot read model_file"),
    ],
)
def test_broken_store_test_files_are_clear_errors(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "broken.fga.yaml"
    path.write_text(content)
    result = _invoke("test", str(path))
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_invalid_tuple_in_store_test_fails_the_test(tmp_path: Path) -> None:
    path = _store_test(
        tmp_path,
        [
            {
                "name": "bad",
                "check": [
                    {"user": "user:x", "object": "document:1", "assertions": {"viewer": False}}
                ],
            }
        ],
        [{"user": "user:x", "relation": "viewer", "object": "folder:1"}],
    )
    result = _invoke("test", str(path))
    assert result.exit_code == 1
    assert "(FAILING) bad: failed to write the test's tuples" in result.output


def test_missing_file_and_glob(tmp_path: Path) -> None:
    assert _invoke("test", str(tmp_path / "none.fga.yaml")).exit_code == 1
    result = _invoke("test", str(tmp_path / "*.nothing.yaml"))
    assert result.exit_code == 1 and "no file matches" in result.output


def test_transform_prints_the_json_model(tmp_path: Path) -> None:
    dsl = tmp_path / "m.fga"
    dsl.write_text(
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n"
    )
    result = _invoke("transform", str(dsl))
    assert result.exit_code == 0, result.output
    model = json.loads(result.output)
    assert model["schema_version"] == "1.1"
    assert [t["type"] for t in model["type_definitions"]] == ["user", "doc"]
    bad = tmp_path / "bad.fga"
    bad.write_text("model\n  schema 1.1\ntype doc\n  relations\n    define viewer [user]\n")
    result = _invoke("transform", str(bad))
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_local_store_commands(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text(json.dumps(MODEL))
    result = _invoke("write-model", str(tmp_path / "model.json"))
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["authorization_model_id"]) == 26
    assert _invoke("write", "user:anne", "owner", "document:1").exit_code == 0
    r = _invoke(
        "write",
        "user:bob",
        "viewer",
        "document:2",
        "--condition",
        "weekday",
        "--condition-context",
        '{"day": "monday"}',
    )
    assert r.exit_code == 0, r.output
    assert json.loads(_invoke("check", "user:anne", "viewer", "document:1").output) == {
        "allowed": True
    }
    assert json.loads(_invoke("check", "user:bob", "viewer", "document:2").output)["allowed"]
    assert not json.loads(_invoke("check", "user:carl", "viewer", "document:1").output)["allowed"]
    ctx = _invoke(
        "check",
        "user:carl",
        "viewer",
        "document:9",
        "--contextual-tuple",
        "user:carl owner document:9",
    )
    assert json.loads(ctx.output)["allowed"] is True
    listed = _invoke("list-objects", "user:anne", "viewer", "document")
    assert json.loads(listed.output) == {"objects": ["document:1"]}
    users = _invoke("list-users", "document:1", "viewer", "user")
    assert json.loads(users.output) == {"users": ["user:anne"]}
    rows = [
        json.loads(line) for line in _invoke("read", "--object", "document:2").output.splitlines()
    ]
    assert rows == [
        {
            "user": "user:bob",
            "relation": "viewer",
            "object": "document:2",
            "condition": {"name": "weekday", "context": {"day": "monday"}},
        }
    ]
    assert _invoke("delete", "user:anne", "owner", "document:1").exit_code == 0
    assert not json.loads(_invoke("check", "user:anne", "viewer", "document:1").output)["allowed"]
    tuples_file = tmp_path / "tuples.yaml"
    tuples_file.write_text(
        yaml.safe_dump(
            [
                {"user": f"user:u{i}", "relation": "owner", "object": "document:5"}
                for i in range(150)
            ]
        )
    )
    r = _invoke("write", "--file", str(tuples_file))
    assert r.exit_code == 0 and json.loads(r.output) == {"written": 150}
    assert _invoke("write", "user:a", "--file", str(tuples_file)).exit_code == 1
    partial = tmp_path / "partial.yaml"
    rows = [{"user": f"user:p{i}", "relation": "owner", "object": "document:6"} for i in range(150)]
    rows[120]["relation"] = "nope"
    partial.write_text(yaml.safe_dump(rows))
    r = _invoke("write", "--file", str(partial))
    assert r.exit_code == 1 and "tuples 1-100 were written" in r.output
    incomplete = _invoke("write", "user:a", "owner")
    assert incomplete.exit_code == 1 and "USER RELATION OBJECT" in incomplete.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("check", "user:anne", "viewer", "folder:1"), "type 'folder' not found"),
        (("write", "user:anne", "nope", "document:1"), "Invalid tuple"),
        (("check", "user:a", "viewer", "document:1", "--context", "[1]"), "must be a JSON object"),
        (("check", "user:a", "viewer", "document:1", "--context", "{"), "not valid JSON"),
        (
            ("check", "user:a", "viewer", "document:1", "--contextual-tuple", "a b"),
            "USER RELATION OBJECT",
        ),
        (("delete", "user:nobody", "owner", "document:1"), "cannot delete"),
    ],
)
def test_store_command_errors_are_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "model.json").write_text(json.dumps(MODEL))
    assert _invoke("write-model", str(tmp_path / "model.json")).exit_code == 0
    result = _invoke(*args)
    assert result.exit_code == 1
    assert message in result.output, result.output
    assert "Traceback" not in result.output


def test_no_model_yet_is_a_clear_error() -> None:
    result = _invoke("check", "user:a", "viewer", "document:1")
    assert result.exit_code == 1
    assert "No authorization models found" in result.output


def test_commands_against_an_openfga_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`WARRANT_FGA_BACKEND=openfga`: the same commands go through openfga-sdk to the API."""
    from auth.fga.store import Store
    from devstack.openfga_api import create_openfga_app

    store = Store(tmp_path / "server.sqlite3")
    store_id = store.create_store("cli")
    store.write_model(store_id, MODEL)
    with ServerThread(
        create_openfga_app(get_settings(), store=store, preshared_keys=["tok"])
    ) as srv:
        monkeypatch.setenv("WARRANT_FGA_BACKEND", "openfga")
        monkeypatch.setenv("WARRANT_FGA_API_URL", srv.url)
        monkeypatch.setenv("WARRANT_FGA_STORE_ID", store_id)
        monkeypatch.setenv("WARRANT_FGA_API_TOKEN", "tok")
        get_settings.cache_clear()
        (tmp_path / "model.json").write_text(json.dumps(MODEL))
        written = _invoke("write-model", str(tmp_path / "model.json"))
        assert written.exit_code == 0, written.output
        assert (
            store.read_model(store_id)["id"] == json.loads(written.output)["authorization_model_id"]
        )
        assert _invoke("write", "user:anne", "owner", "document:1").exit_code == 0
        assert json.loads(_invoke("check", "user:anne", "viewer", "document:1").output)["allowed"]
        monkeypatch.setenv("WARRANT_FGA_API_TOKEN", "wrong")
        get_settings.cache_clear()
        refused = _invoke("check", "user:anne", "viewer", "document:1")
        assert refused.exit_code == 1 and "refused our credentials" in refused.output
        assert "wrong" not in refused.output.replace("OpenFGA", "")
    monkeypatch.setenv("WARRANT_FGA_API_URL", f"http://127.0.0.1:{srv.port}")
    get_settings.cache_clear()
    down = _invoke("check", "user:anne", "viewer", "document:1")
    assert down.exit_code == 1 and "unavailable" in down.output
    store.close()


def test_tuple_files_yaml_json_and_csv(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text(json.dumps(MODEL))
    (tmp_path / "a.yaml").write_text(
        yaml.safe_dump([{"user": "user:anne", "relation": "owner", "object": "document:1"}])
    )
    (tmp_path / "b.json").write_text(
        json.dumps([{"user": "group:eng#member", "relation": "viewer", "object": "document:2"}])
    )
    (tmp_path / "c.csv").write_text(
        "user_type,user_id,user_relation,relation,object_type,object_id,condition_name,"
        "condition_context\n"
        "user,carl,,member,group,eng,,\n"
        'user,dan,,viewer,document,3,weekday,"{""day"": ""monday""}"\n'
    )
    spec = {
        "model_file": "model.json",
        "tuple_files": ["a.yaml", "b.json"],
        "tests": [
            {
                "name": "files",
                "tuple_file": "c.csv",
                "check": [
                    {"user": "user:anne", "object": "document:1", "assertions": {"viewer": True}},
                    {"user": "user:carl", "object": "document:2", "assertions": {"viewer": True}},
                    {"user": "user:dan", "object": "document:3", "assertions": {"viewer": True}},
                ],
            }
        ],
    }
    path = tmp_path / "files.fga.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = _invoke("test", str(path))
    assert result.exit_code == 0, result.output
    assert "Checks 3/3 passing" in result.output


def test_store_test_with_dsl_model_and_a_syntax_error(tmp_path: Path) -> None:
    good = tmp_path / "good.fga.yaml"
    good.write_text(
        "model: |\n  model\n    schema 1.1\n  type user\n  type doc\n    relations\n"
        "      define viewer: [user]\n"
        "tuples:\n  - {user: user:a, relation: viewer, object: doc:1}\n"
        "tests:\n  - name: t\n    check:\n      - user: user:a\n        object: doc:1\n"
        "        assertions: {viewer: true}\n"
    )
    assert _invoke("test", str(good)).exit_code == 0
    bad = tmp_path / "bad.fga.yaml"
    bad.write_text(
        "model: |\n  model\n    schema 1.1\n  type doc\n    relations\n      define viewer [user]\n"
        "tests: []\n"
    )
    result = _invoke("test", str(bad))
    assert result.exit_code == 1
    assert "invalid model" in result.output and "Traceback" not in result.output
    # several files: one failing file fails the run, the passing one still reports
    both = _invoke("test", str(good), str(bad))
    assert both.exit_code == 1 and "Tests 1/1 passing" in both.output


# start-up: commands are imported when used -------------------------------------------------

_HEAVY = ("langgraph", "langchain_core", "langchain", "torch", "chromadb", "sentence_transformers")


def _modules_after(*argv: str) -> set[str]:
    import subprocess
    import sys

    code = (
        "import sys\n"
        f"sys.argv = ['warrant', *{list(argv)!r}]\n"
        "from cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('MODULES', ' '.join(sorted(m.split('.')[0] for m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("MODULES "))
    return set(line.split()[1:])


@pytest.mark.parametrize(
    "argv",
    [("--help",), ("fga", "--help"), ("fga", "test", "tests/fga_engine/data/conditions.fga.yaml")],
)
def test_help_and_fga_commands_do_not_import_the_agent_stack(argv: tuple[str, ...]) -> None:
    loaded = _modules_after(*argv)
    assert not loaded & set(_HEAVY), sorted(loaded & set(_HEAVY))


def test_the_help_table_matches_every_command_and_its_own_help() -> None:
    """`warrant --help` lists commands from a table (no imports): it must name exactly the
    commands the modules register, each with the command's own one-line help."""
    import importlib

    import typer
    import typer.main

    from cli.main import COMMANDS

    real: dict[str, str] = {}
    for module in dict.fromkeys(m for m, _ in COMMANDS.values()):
        sub = typer.Typer()
        sub.callback()(lambda: None)
        importlib.import_module(f"cli.{module}").register(sub)
        group = typer.main.get_group(sub)
        for name in group.list_commands(None):  # type: ignore[arg-type]
            cmd = group.get_command(None, name)  # type: ignore[arg-type]
            real[name] = cmd.get_short_help_str(limit=500)  # type: ignore[union-attr]
    assert {name: help_ for name, (_m, help_) in COMMANDS.items()} == real


def test_a_lazily_loaded_command_still_runs() -> None:
    result = runner.invoke(app, ["fga", "transform", "--help"])
    assert result.exit_code == 0 and "transform" in result.output.lower()
    assert runner.invoke(app, ["no-such-command"]).exit_code != 0
