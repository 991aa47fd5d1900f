"""OpenFGA's consolidated schema 1.1 suite, run as OpenFGA's own harness runs it.

Each test runs twice: with its tuples written to the store, stage by stage (later stages write
a new model version; earlier tuples stay and are ignored where the new model no longer allows
them), and with its tuples sent as contextual tuples (single-stage tests with at most 100
tuples). Lists compare as multisets, and every listed object or user must also pass check.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import yaml

from auth.fga import engine
from auth.fga.errors import FGAError
from auth.fga.store import Store
from tests.fga_engine.helpers import model_json, tuple_from_yaml
from tests.reference import OPENFGA_DATA

SUITE = OPENFGA_DATA / "consolidated_1_1_tests.yaml"

# Read unconditionally: missing reference data must fail the run, never shrink it to nothing.
TESTS: list[dict[str, Any]] = yaml.safe_load(SUITE.read_text())["tests"]
TALLY: Counter[str] = Counter()


def _cases() -> list[Any]:
    cases = []
    for test in TESTS:
        cases.append(pytest.param(test, False, id=test["name"]))
        ctx_ok = len(test["stages"]) == 1 and len(test["stages"][0].get("tuples") or []) <= 100
        if ctx_ok:
            cases.append(pytest.param(test, True, id=test["name"] + "_ctxTuples"))
    return cases


def _outcome(fn: Any) -> tuple[Any, int | None]:
    try:
        return fn(), None
    except FGAError as e:
        return None, int(e.code)


def run_test(test: dict[str, Any], contextual_pass: bool) -> list[str]:
    """Runs every assertion of a test; returns the failures (empty when all pass)."""
    failures: list[str] = []
    store = Store(":memory:")
    sid = store.create_store(test["name"])
    for n, stage in enumerate(test["stages"]):
        model_id = store.write_model(sid, model_json(stage["model"]))
        ts = store.typesystem(sid, model_id)
        tuples = [tuple_from_yaml(t) for t in stage.get("tuples") or []]
        if not contextual_pass:
            for i in range(0, len(tuples), 100):
                store.write(sid, writes=tuples[i : i + 100], model_id=model_id)
        source = store.source(sid)

        def ctx_tuples(assertion: dict[str, Any], _tuples: list = tuples) -> list:
            mine = [tuple_from_yaml(t) for t in assertion.get("contextualTuples") or []]
            return mine + (_tuples if contextual_pass else [])

        def fail(kind: str, i: int, detail: str, _n: int = n) -> None:
            failures.append(f"stage {_n} {kind} #{i}: {detail}")

        def check(user: str, relation: str, obj: str, ctx: list, context: Any) -> bool:
            return engine.check(
                ts, source, user, relation, obj, contextual_tuples=ctx, context=context
            )

        for i, a in enumerate(stage.get("checkAssertions") or []):
            t = a["tuple"]
            ctx = ctx_tuples(a)
            got, code = _outcome(
                lambda t=t, ctx=ctx, a=a: check(
                    t["user"], t["relation"], t["object"], ctx, a.get("context")
                )
            )
            want_code = a.get("errorCode")
            if want_code:
                ok = code == want_code
            else:
                ok = code is None and got == bool(a.get("expectation"))
            TALLY["check_pass" if ok else "check_fail"] += 1
            if not ok:
                fail("check", i, f"{t} want {want_code or a.get('expectation')} got {code or got}")

        for i, a in enumerate(stage.get("listObjectsAssertions") or []):
            r = a["request"]
            ctx = ctx_tuples(a)
            got, code = _outcome(
                lambda r=r, ctx=ctx, a=a: engine.list_objects(
                    ts,
                    source,
                    r["user"],
                    r["relation"],
                    r["type"],
                    contextual_tuples=ctx,
                    context=a.get("context"),
                )
            )
            want_code = a.get("errorCode")
            if want_code:
                ok = code == want_code
            else:
                ok = code is None and Counter(got) == Counter(a.get("expectation") or [])
                if ok:
                    for obj in got:
                        agreed, c2 = _outcome(
                            lambda obj=obj: check(
                                r["user"], r["relation"], obj, ctx, a.get("context")
                            )
                        )
                        if not agreed:
                            ok = False
                            fail(
                                "list_objects/check",
                                i,
                                f"{obj} listed but check says {c2 or agreed}",
                            )
            TALLY["list_objects_pass" if ok else "list_objects_fail"] += 1
            if not ok:
                fail(
                    "list_objects",
                    i,
                    f"{r} want {want_code or a.get('expectation')} got {code or got}",
                )

        for i, a in enumerate(stage.get("listUsersAssertions") or []):
            r = a["request"]
            ctx = ctx_tuples(a)
            got, code = _outcome(
                lambda r=r, ctx=ctx, a=a: engine.list_users(
                    ts,
                    source,
                    r["object"],
                    r["relation"],
                    r["filters"],
                    contextual_tuples=ctx,
                    context=a.get("context"),
                )
            )
            want_code = a.get("errorCode")
            if want_code:
                ok = code == want_code
            else:
                ok = code is None and Counter(got) == Counter(a.get("expectation") or [])
                if ok:
                    for user in got:
                        agreed, c2 = _outcome(
                            lambda user=user: check(
                                user, r["relation"], r["object"], ctx, a.get("context")
                            )
                        )
                        if not agreed:
                            ok = False
                            fail(
                                "list_users/check",
                                i,
                                f"{user} listed but check says {c2 or agreed}",
                            )
            TALLY["list_users_pass" if ok else "list_users_fail"] += 1
            if not ok:
                fail(
                    "list_users",
                    i,
                    f"{r} want {want_code or a.get('expectation')} got {code or got}",
                )
    store.close()
    return failures


@pytest.mark.skipif(not TESTS, reason="the OpenFGA reference data is not available")
@pytest.mark.parametrize(("test", "contextual_pass"), _cases())
def test_openfga_consolidated(test: dict[str, Any], contextual_pass: bool) -> None:
    failures = run_test(test, contextual_pass)
    assert not failures, "\n".join(failures)


def test_suite_is_complete() -> None:
    """The reference file has the size its README states (137 tests, 160 stages)."""
    if not TESTS:
        pytest.skip("the OpenFGA reference data is not available")
    assert len(TESTS) == 137
    assert sum(len(t["stages"]) for t in TESTS) == 160


def test_the_whole_reference_suite_is_here() -> None:
    """137 tests in 160 stages, as OpenFGA publishes them: a partial copy must not pass quietly."""
    assert len(TESTS) == 137
    assert sum(len(t["stages"]) for t in TESTS) == 160
