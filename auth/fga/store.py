"""The embedded FGA store: stores, authorization model versions and tuples in SQLite.

One SQLite file (or `:memory:`) holds any number of stores. Each store has model versions
(ULID ids, newest last) and tuples indexed both ways: by (object, relation) for forward checks
and by user for reverse lookups. Writes are validated against a model version as OpenFGA does
and are all-or-nothing: on any error (OpenFGA code in `FGAError.code`) the store is unchanged.

API (all synchronous and thread-safe; `LocalFGA` runs them in worker threads)::

    store = Store("fga.db")                     # or Store(":memory:")
    sid = store.create_store("demo")            # ULID
    mid = store.write_model(sid, model_json)    # validated, ULID, becomes the latest
    store.write(sid, writes=[TupleKey(...)], deletes=[...], model_id=None)  # None: latest
    page, token = store.read(sid, object="document:", user="user:anne", page_size=50)
    changes, token = store.read_changes(sid, object_type="document")   # the write/delete log
    ts = store.typesystem(sid, mid)             # compiled model, cached per version
    src = store.source(sid)                     # what auth.fga.engine queries read from

Limits as OpenFGA's defaults: 100 tuples per write request, page size 1..100. Continuation
tokens are opaque, bound to their store, and rejected with 2007 when forged.
Errors: unknown store 5002 (HTTP 404), malformed store id 2030, unknown model 2001, no model
yet 2020, invalid model 2056, invalid tuple 2027 (condition problems 2000), duplicate in one
request 2004, writing an existing / deleting a missing tuple 2017, over 100 tuples 2053.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ulid import ULID

from auth.fga.client import TupleKey
from auth.fga.engine.conditions import compile_check
from auth.fga.engine.typesystem import TypeSystem
from auth.fga.engine.validation import tuple_to_string, validate_tuple
from auth.fga.errors import ErrorCode, FGAError
from auth.fga.language import validate_model

MAX_TUPLES_PER_WRITE = 100
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50

_READ_BY_USER = (
    "SELECT object, relation, user, condition_name, condition_context FROM fga_tuples "
    "WHERE store_id = ? AND object_type = ? AND relation = ? AND user IN ({marks})"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fga_stores (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE TABLE IF NOT EXISTS fga_models (
    id TEXT PRIMARY KEY, store_id TEXT NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fga_models_by_store ON fga_models (store_id, id);
CREATE TABLE IF NOT EXISTS fga_tuples (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    store_id TEXT NOT NULL, object_type TEXT NOT NULL, object TEXT NOT NULL,
    relation TEXT NOT NULL, user TEXT NOT NULL, user_type TEXT NOT NULL,
    condition_name TEXT NOT NULL DEFAULT '', condition_context TEXT,
    ulid TEXT NOT NULL, inserted_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS fga_tuples_by_object
    ON fga_tuples (store_id, object, relation, user);
CREATE INDEX IF NOT EXISTS fga_tuples_by_user
    ON fga_tuples (store_id, user, object_type, relation);
CREATE INDEX IF NOT EXISTS fga_tuples_by_type ON fga_tuples (store_id, object_type, object);
CREATE TABLE IF NOT EXISTS fga_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, store_id TEXT NOT NULL, operation TEXT NOT NULL,
    object TEXT NOT NULL, relation TEXT NOT NULL, user TEXT NOT NULL,
    condition_name TEXT NOT NULL DEFAULT '', condition_context TEXT, inserted_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fga_changes_by_store ON fga_changes (store_id, seq);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _is_ulid(value: str) -> bool:
    try:
        ULID.from_str(value)
    except (ValueError, TypeError):
        return False
    return len(value) == 26


def _row_to_tuple(row: sqlite3.Row | tuple[Any, ...]) -> TupleKey:
    obj, relation, user, cond, ctx = row[0], row[1], row[2], row[3], row[4]
    return TupleKey(
        user=user,
        relation=relation,
        object=obj,
        condition_name=cond or None,
        condition_context=json.loads(ctx) if ctx else None,
    )


def _encode_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(payload, dict):
            raise ValueError
        return payload
    except (ValueError, json.JSONDecodeError, UnicodeDecodeError):
        raise FGAError(ErrorCode.invalid_continuation_token, "Invalid continuation token") from None


class StoreSource:
    """The engine's view of one store's tuples (see `auth.fga.engine.reader.TupleSource`)."""

    def __init__(self, store: Store, store_id: str) -> None:
        self._store = store
        self._store_id = store_id

    def read_object_relation(self, object: str, relation: str) -> list[TupleKey]:
        rows = self._store._query(
            "SELECT object, relation, user, condition_name, condition_context FROM fga_tuples "
            "WHERE store_id = ? AND object = ? AND relation = ?",
            (self._store_id, object, relation),
        )
        return [_row_to_tuple(r) for r in rows]

    def read_user_tuple(self, object: str, relation: str, user: str) -> TupleKey | None:
        rows = self._store._query(
            "SELECT object, relation, user, condition_name, condition_context FROM fga_tuples "
            "WHERE store_id = ? AND object = ? AND relation = ? AND user = ?",
            (self._store_id, object, relation, user),
        )
        return _row_to_tuple(rows[0]) if rows else None

    def objects_of_type(self, object_type: str) -> Iterable[str]:
        rows = self._store._query(
            "SELECT DISTINCT object FROM fga_tuples WHERE store_id = ? AND object_type = ?",
            (self._store_id, object_type),
        )
        return [r[0] for r in rows]

    def read_by_user(self, users: Sequence[str], object_type: str, relation: str) -> list[TupleKey]:
        out: list[TupleKey] = []
        users = list(users)
        for start in range(0, len(users), 500):
            chunk = users[start : start + 500]
            marks = ",".join("?" * len(chunk))
            # only "?" placeholders are interpolated into the statement
            sql = _READ_BY_USER.format(marks=marks)
            rows = self._store._query(sql, (self._store_id, object_type, relation, *chunk))
            out.extend(_row_to_tuple(r) for r in rows)
        return out


class Store:
    """Stores, model versions and tuples in one SQLite database (see the module docstring)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        self._typesystems: dict[tuple[str, str], TypeSystem] = {}

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # stores ----------------------------------------------------------------------------------

    def create_store(self, name: str) -> str:
        """A new store; returns its ULID."""
        if not isinstance(name, str) or not name.strip():
            raise FGAError(ErrorCode.validation_error, "a store needs a non-empty name")
        store_id = str(ULID())
        now = _now()
        with self._lock:
            self._conn.execute(
                "INSERT INTO fga_stores (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (store_id, name, now, now),
            )
        return store_id

    def get_store(self, store_id: str) -> dict[str, Any]:
        """`{"id", "name", "created_at", "updated_at"}`; 5002 if there is no such store."""
        if not _is_ulid(store_id):
            raise FGAError(
                ErrorCode.store_id_invalid_length,
                f"invalid store id '{store_id[:40]}': a store id is a 26-character ULID",
            )
        rows = self._query(
            "SELECT id, name, created_at, updated_at FROM fga_stores "
            "WHERE id = ? AND deleted_at IS NULL",
            (store_id,),
        )
        if not rows:
            raise FGAError(ErrorCode.store_id_not_found, f"store '{store_id}' not found")
        r = rows[0]
        return {"id": r[0], "name": r[1], "created_at": r[2], "updated_at": r[3]}

    def list_stores(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT id, name, created_at, updated_at FROM fga_stores "
            "WHERE deleted_at IS NULL ORDER BY id"
        )
        return [{"id": r[0], "name": r[1], "created_at": r[2], "updated_at": r[3]} for r in rows]

    def delete_store(self, store_id: str) -> None:
        self.get_store(store_id)
        with self._lock:
            self._conn.execute(
                "UPDATE fga_stores SET deleted_at = ? WHERE id = ?", (_now(), store_id)
            )

    # models ----------------------------------------------------------------------------------

    def write_model(self, store_id: str, model: dict[str, Any]) -> str:
        """Validate and store a new model version (OpenFGA JSON); returns its ULID."""
        self.get_store(store_id)
        body = {
            "schema_version": model.get("schema_version", "1.1"),
            "type_definitions": model.get("type_definitions") or [],
        }
        if model.get("conditions"):
            body["conditions"] = model["conditions"]
        _validate_model(body)
        model_id = str(ULID())
        with self._lock:
            self._conn.execute(
                "INSERT INTO fga_models (id, store_id, body, created_at) VALUES (?, ?, ?, ?)",
                (model_id, store_id, json.dumps(body), _now()),
            )
        return model_id

    def read_model(self, store_id: str, model_id: str | None = None) -> dict[str, Any]:
        """A model version with its `id` (the latest if `model_id` is None)."""
        self.get_store(store_id)
        if model_id is None:
            rows = self._query(
                "SELECT id, body FROM fga_models WHERE store_id = ? ORDER BY id DESC LIMIT 1",
                (store_id,),
            )
            if not rows:
                raise FGAError(
                    ErrorCode.latest_authorization_model_not_found,
                    f"No authorization models found for store '{store_id}'",
                )
        else:
            if not _is_ulid(model_id):
                raise FGAError(
                    ErrorCode.authorization_model_id_too_long
                    if len(model_id) > 26
                    else ErrorCode.validation_error,
                    f"invalid authorization model id '{model_id[:40]}'",
                )
            rows = self._query(
                "SELECT id, body FROM fga_models WHERE store_id = ? AND id = ?",
                (store_id, model_id),
            )
            if not rows:
                raise FGAError(
                    ErrorCode.authorization_model_not_found,
                    f"Authorization Model '{model_id}' not found",
                )
        body = json.loads(rows[0][1])
        return {"id": rows[0][0], **body}

    def list_models(self, store_id: str) -> list[dict[str, Any]]:
        """Every model version, newest first (as OpenFGA lists them)."""
        self.get_store(store_id)
        rows = self._query(
            "SELECT id, body FROM fga_models WHERE store_id = ? ORDER BY id DESC", (store_id,)
        )
        return [{"id": r[0], **json.loads(r[1])} for r in rows]

    def typesystem(self, store_id: str, model_id: str | None = None) -> TypeSystem:
        """The compiled model version (latest if None), cached per version."""
        self.get_store(store_id)  # a deleted or unknown store answers nothing (5002)
        if model_id is None:
            # the latest version's id is one indexed lookup; its body is parsed only once
            rows = self._query(
                "SELECT id FROM fga_models WHERE store_id = ? ORDER BY id DESC LIMIT 1",
                (store_id,),
            )
            if rows:
                cached = self._typesystems.get((store_id, rows[0][0]))
                if cached is not None:
                    return cached
        else:
            cached = self._typesystems.get((store_id, model_id))
            if cached is not None:
                return cached
        model = self.read_model(store_id, model_id)
        key = (store_id, model["id"])
        cached = self._typesystems.get(key)
        if cached is None:
            cached = TypeSystem(model, model["id"])
            self._typesystems[key] = cached
        return cached

    # tuples ----------------------------------------------------------------------------------

    def source(self, store_id: str) -> StoreSource:
        """The store's tuples as the engine reads them."""
        return StoreSource(self, store_id)

    def write(
        self,
        store_id: str,
        writes: Sequence[TupleKey] = (),
        deletes: Sequence[TupleKey] = (),
        model_id: str | None = None,
    ) -> None:
        """Write and delete tuples atomically, validated against a model version."""
        writes, deletes = list(writes), list(deletes)
        if not writes and not deletes:
            raise FGAError(
                ErrorCode.invalid_write_input,
                "Invalid input. Make sure you provide at least one write or delete",
            )
        if len(writes) + len(deletes) > MAX_TUPLES_PER_WRITE:
            raise FGAError(
                ErrorCode.exceeded_entity_limit,
                "The number of write operations exceeds the allowed limit of "
                f"{MAX_TUPLES_PER_WRITE}",
            )
        ts = self.typesystem(store_id, model_id)
        seen: set[tuple[str, str, str]] = set()
        for tk in [*writes, *deletes]:
            key = (tk.object, tk.relation, tk.user)
            if key in seen:
                raise FGAError(
                    ErrorCode.cannot_allow_duplicate_tuples_in_one_request,
                    f"duplicate tuple in write: user: '{tk.user}', relation: '{tk.relation}', "
                    f"object: '{tk.object}'",
                )
            seen.add(key)
        for tk in writes:
            validate_tuple(ts, tk)
        for tk in deletes:
            _validate_delete_key(tk)
        now = _now()
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for tk in deletes:
                    cur.execute(
                        "DELETE FROM fga_tuples WHERE store_id = ? AND object = ? AND relation = ? "
                        "AND user = ?",
                        (store_id, tk.object, tk.relation, tk.user),
                    )
                    if cur.rowcount == 0:
                        raise FGAError(
                            ErrorCode.write_failed_due_to_invalid_input,
                            f"cannot delete a tuple which does not exist: '{tuple_to_string(tk)}'",
                        )
                    cur.execute(
                        "INSERT INTO fga_changes (store_id, operation, object, relation, user, "
                        "inserted_at) VALUES (?, 'TUPLE_OPERATION_DELETE', ?, ?, ?, ?)",
                        (store_id, tk.object, tk.relation, tk.user, now),
                    )
                for tk in writes:
                    ctx = json.dumps(tk.condition_context) if tk.condition_context else None
                    try:
                        cur.execute(
                            "INSERT INTO fga_tuples (store_id, object_type, object, relation, "
                            "user, user_type, condition_name, condition_context, ulid, "
                            "inserted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                store_id,
                                tk.object.split(":", 1)[0],
                                tk.object,
                                tk.relation,
                                tk.user,
                                tk.user.split(":", 1)[0],
                                tk.condition_name or "",
                                ctx,
                                str(ULID()),
                                now,
                            ),
                        )
                    except sqlite3.IntegrityError:
                        raise FGAError(
                            ErrorCode.write_failed_due_to_invalid_input,
                            f"cannot write a tuple which already exists: '{tuple_to_string(tk)}'",
                        ) from None
                    cur.execute(
                        "INSERT INTO fga_changes (store_id, operation, object, relation, user, "
                        "condition_name, condition_context, inserted_at) "
                        "VALUES (?, 'TUPLE_OPERATION_WRITE', ?, ?, ?, ?, ?, ?)",
                        (
                            store_id,
                            tk.object,
                            tk.relation,
                            tk.user,
                            tk.condition_name or "",
                            ctx,
                            now,
                        ),
                    )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def read(
        self,
        store_id: str,
        *,
        user: str | None = None,
        relation: str | None = None,
        object: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        continuation_token: str | None = None,
    ) -> tuple[list[TupleKey], str]:
        """One page of tuples matching the filter, and the token of the next page ("" if last).

        As OpenFGA: `object` is `type:id` or `type:` (all objects of a type, then `user` is
        required); without `object`, `user` and `relation` must be empty too (read everything).
        """
        self.get_store(store_id)
        if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise FGAError(
                ErrorCode.page_size_invalid,
                f"page size must be between 1 and {MAX_PAGE_SIZE}",
            )
        clauses = ["store_id = ?"]
        params: list[Any] = [store_id]
        if object:
            object_type, sep, object_id = object.partition(":")
            if not sep or not object_type:
                raise FGAError(
                    ErrorCode.validation_error,
                    f"invalid object '{object}': use 'type:id' or 'type:'",
                )
            if object_id:
                clauses.append("object = ?")
                params.append(object)
            else:
                if not user:
                    raise FGAError(
                        ErrorCode.validation_error,
                        "reading all objects of a type requires a user",
                    )
                clauses.append("object_type = ?")
                params.append(object_type)
        elif user or relation:
            raise FGAError(
                ErrorCode.validation_error,
                "a read filter with a user or a relation also needs an object ('type:' at least)",
            )
        if relation:
            clauses.append("relation = ?")
            params.append(relation)
        if user:
            clauses.append("user = ?")
            params.append(user)
        after = 0
        if continuation_token:
            payload = _decode_token(continuation_token)
            after = payload.get("after")
            if not isinstance(after, int) or payload.get("store") != store_id:
                raise FGAError(ErrorCode.invalid_continuation_token, "Invalid continuation token")
        clauses.append("seq > ?")
        params.append(after)
        # the clauses are fixed strings with "?" placeholders; values travel as parameters
        where = " AND ".join(clauses)
        sql = f"SELECT object, relation, user, condition_name, condition_context, seq FROM fga_tuples WHERE {where} ORDER BY seq LIMIT ?"  # noqa: S608, E501
        rows = self._query(sql, (*params, page_size + 1))
        page = rows[:page_size]
        token = ""
        if len(rows) > page_size:
            token = _encode_token({"store": store_id, "after": page[-1][5]})
        return [_row_to_tuple(r) for r in page], token

    def read_changes(
        self,
        store_id: str,
        *,
        object_type: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        continuation_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """The write and delete log, oldest first (OpenFGA's ReadChanges), one page at a time.

        Each change is `{"tuple_key": TupleKey, "operation": "TUPLE_OPERATION_WRITE" |
        "TUPLE_OPERATION_DELETE", "timestamp": iso}`; the token continues after the last one.
        """
        self.get_store(store_id)
        if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise FGAError(
                ErrorCode.page_size_invalid, f"page size must be between 1 and {MAX_PAGE_SIZE}"
            )
        after = 0
        if continuation_token:
            payload = _decode_token(continuation_token)
            after = payload.get("changes_after")
            if not isinstance(after, int) or payload.get("store") != store_id:
                raise FGAError(ErrorCode.invalid_continuation_token, "Invalid continuation token")
        prefix = f"{object_type}:" if object_type else ""
        rows = self._query(
            "SELECT object, relation, user, condition_name, condition_context, seq, operation, "
            "inserted_at FROM fga_changes WHERE store_id = ? AND seq > ? "
            "AND (? = '' OR substr(object, 1, ?) = ?) ORDER BY seq LIMIT ?",
            (store_id, after, prefix, len(prefix), prefix, page_size),
        )
        changes = [
            {"tuple_key": _row_to_tuple(r), "operation": r[6], "timestamp": r[7]} for r in rows
        ]
        token = continuation_token or ""
        if rows:
            token = _encode_token({"store": store_id, "changes_after": rows[-1][5]})
        return changes, token

    def count_tuples(self, store_id: str) -> int:
        return int(
            self._query("SELECT COUNT(*) FROM fga_tuples WHERE store_id = ?", (store_id,))[0][0]
        )

    def bulk_load(
        self, store_id: str, tuples: Iterable[TupleKey], model_id: str | None = None
    ) -> int:
        """Write many tuples fast (benchmarks, ingestion): validated, duplicates skipped."""
        ts = self.typesystem(store_id, model_id)
        now = _now()
        rows = []
        for tk in tuples:
            validate_tuple(ts, tk)
            ctx = json.dumps(tk.condition_context) if tk.condition_context else None
            rows.append(
                (
                    store_id,
                    tk.object.split(":", 1)[0],
                    tk.object,
                    tk.relation,
                    tk.user,
                    tk.user.split(":", 1)[0],
                    tk.condition_name or "",
                    ctx,
                    str(ULID()),
                    now,
                )
            )
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                before = self._conn.total_changes
                cur.executemany(
                    "INSERT OR IGNORE INTO fga_tuples (store_id, object_type, object, relation, "
                    "user, user_type, condition_name, condition_context, ulid, inserted_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                written = self._conn.total_changes - before
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return written


def _validate_delete_key(tk: TupleKey) -> None:
    if not tk.object or not tk.relation or not tk.user:
        raise FGAError(
            ErrorCode.invalid_tuple,
            f"Invalid tuple '{tuple_to_string(tk)}'. "
            "Reason: user, relation and object are required",
        )


MAX_CONDITIONS = 25  # OpenFGA's request validation of a model write


def _validate_model(model: dict[str, Any]) -> None:
    """OpenFGA's model checks: the language package's validator when present, then ours."""
    if model.get("schema_version") not in ("1.1", "1.2"):  # 1.2: a modular model
        raise FGAError(
            ErrorCode.invalid_authorization_model,
            f"unsupported schema version '{model.get('schema_version')}': use 1.1 or 1.2",
        )
    if not model.get("type_definitions"):
        raise FGAError(
            ErrorCode.type_definitions_too_few_items,
            "an authorization model needs at least one type definition",
        )
    if len(model.get("conditions") or {}) > MAX_CONDITIONS:
        raise FGAError(
            ErrorCode.validation_error,
            "invalid WriteAuthorizationModelRequest.Conditions: value must contain no more "
            f"than {MAX_CONDITIONS} pair(s)",
        )
    try:
        validate_model(model)
    except FGAError:
        raise
    except Exception as e:  # the parser's own error type: report it with OpenFGA's code
        raise FGAError(ErrorCode.invalid_authorization_model, str(e)) from None
    try:
        ts = TypeSystem(model)
    except FGAError:
        raise
    except (KeyError, TypeError, AttributeError) as e:
        raise FGAError(
            ErrorCode.invalid_authorization_model, f"malformed authorization model: {e}"
        ) from None
    problem = _reference_problem(ts)
    if problem:
        raise FGAError(ErrorCode.invalid_authorization_model, problem)
    for condition in ts.conditions.values():
        problem = compile_check(condition.name, condition.expression)
        if problem:
            raise FGAError(ErrorCode.invalid_authorization_model, problem)


def _reference_problem(ts: TypeSystem) -> str | None:
    """The first reference to something the model does not define (types, relations,
    conditions, tuplesets), as OpenFGA refuses such models; None if all are defined."""
    from auth.fga.engine.typesystem import _walk

    for type_name, relations in ts.types.items():
        for rel in relations.values():
            where = f"'{type_name}#{rel.name}'"
            for r in rel.restrictions:
                if not ts.has_type(r.type):
                    return f"{where} allows type '{r.type}', which is not defined"
                if r.relation and ts.relation_or_none(r.type, r.relation) is None:
                    return f"{where} allows '{r.type}#{r.relation}', which is not defined"
                if r.condition and r.condition not in ts.conditions:
                    return f"{where} uses condition '{r.condition}', which is not defined"
            for node in _walk(rel.rewrite):
                if node[0] == "computed" and node[1] not in relations:
                    return f"{where} refers to relation '{node[1]}', which '{type_name}' lacks"
                if node[0] == "ttu":
                    tupleset = relations.get(node[1])
                    if tupleset is None:
                        return f"{where} uses '{node[1]}' as a tupleset, which '{type_name}' lacks"
                    if tupleset.rewrite[0] != "this" or any(
                        r.relation or r.wildcard for r in tupleset.restrictions
                    ):
                        return (
                            f"{where}: the tupleset '{node[1]}' must be directly assignable objects"
                        )
                    if not any(ts.relation_or_none(r.type, node[2]) for r in tupleset.restrictions):
                        return f"{where}: no type of '{type_name}#{node[1]}' defines '{node[2]}'"
    return None
