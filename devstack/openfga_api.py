"""OpenFGA's HTTP API served over the embedded store and engine, for the devstack and the tests.

The paths, JSON shapes, status codes and error bodies are OpenFGA's (openfga/api
`openfga_service.proto` through grpc-gateway): every field is emitted even when empty, errors
are `{"code": "<name>", "message": "..."}` with 400 for input errors (codes 2000-3999), 401 for
authentication, 404 for unknown stores and endpoints, 500 (`internal_error`, no details) for
anything unexpected. Limits are OpenFGA's defaults: 100 tuples per write, 50 checks per batch,
100 contextual tuples (20 for list-users), page sizes 1..100, list results capped at 1,000.

`openfga-sdk`, OpenFGA's CLI and Warrant's own `OpenFGA` client talk to it as to a real server.

Known difference: writing a model to a store id that was never created answers 404
`store_id_not_found` (OpenFGA would accept it; a devstack store must be created first).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.fga import engine
from auth.fga.client import CheckRequest, TupleKey
from auth.fga.errors import ErrorCode, FGAError
from auth.fga.store import MAX_TUPLES_PER_WRITE, Store

MAX_CHECKS_PER_BATCH = 50
MAX_CONTEXTUAL_TUPLES = 100
MAX_LIST_USERS_CONTEXTUAL_TUPLES = 20
DEFAULT_LIST_MAX_RESULTS = 1000
DEFAULT_PAGE_SIZE = 50

_ULID_PATTERN = "^[ABCDEFGHJKMNPQRSTVWXYZ0-9]{26}$"
_ULID = re.compile(_ULID_PATTERN)
_STORE_NAME_PATTERN = r"^[a-zA-Z0-9\s\.\-\/^_&@]{3,64}$"
_STORE_NAME = re.compile(_STORE_NAME_PATTERN)
_TYPE_PATTERN = r"^[^:#@\s]{1,254}$"
_RELATION_PATTERN = r"^[^:#@\s]{1,50}$"
_OBJECT_PATTERN = r"^[^\s]{2,256}$"
_USER_PATTERN = r"^[^\s]{2,512}$"
_CORRELATION_PATTERN = r"^[\w\d-]{1,36}$"
_CONSISTENCY = {"UNSPECIFIED", "MINIMIZE_LATENCY", "HIGHER_CONSISTENCY"}

Handler = Callable[[Request], Awaitable[Response]]


class APIError(Exception):
    """An error answered with OpenFGA's body: HTTP status, code name, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _invalid(message: str, code: ErrorCode = ErrorCode.validation_error) -> APIError:
    return APIError(400, code.name, message)


def _pattern_error(message_type: str, field: str, pattern: str) -> APIError:
    """A proto validation failure, worded as protoc-gen-validate words it."""
    return _invalid(
        f'invalid {message_type}.{field}: value does not match regex pattern "{pattern}"'
    )


def _from_fga(e: FGAError) -> APIError:
    return APIError(e.http_status, e.name, e.message)


# ------------------------------------------------------------------------------------------------
# request parsing: the proto's field rules


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _invalid("malformed JSON") from None
    if not isinstance(body, dict):
        raise _invalid("the request body must be a JSON object")
    return body


def _str(body: dict[str, Any], key: str, message_type: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _invalid(f"invalid {message_type}.{_camel(key)}: value must be a string")
    return value


def _camel(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


def _store_id(request: Request, message_type: str) -> str:
    store_id = request.path_params["store_id"]
    if not _ULID.match(store_id):
        raise _pattern_error(message_type, "StoreId", _ULID_PATTERN)
    return store_id


def _model_id(body: dict[str, Any], message_type: str) -> str | None:
    model_id = _str(body, "authorization_model_id", message_type)
    if not model_id:
        return None
    if not _ULID.match(model_id):
        raise _pattern_error(message_type, "AuthorizationModelId", _ULID_PATTERN)
    return model_id


def _consistency(body: dict[str, Any], message_type: str) -> None:
    value = body.get("consistency")
    if value is None:
        return
    name = value.removeprefix("CONSISTENCY_PREFERENCE_") if isinstance(value, str) else None
    # the embedded store is always consistent: both preferences give the same answer
    if name not in _CONSISTENCY:
        raise _invalid(f"invalid value for enum field consistency: {value!r}")


def _context(body: dict[str, Any], message_type: str) -> dict[str, Any] | None:
    context = body.get("context")
    if context is None:
        return None
    if not isinstance(context, dict):
        raise _invalid(f"invalid {message_type}.Context: context must be a JSON object")
    return context


def _page_size(value: Any, message_type: str) -> int:
    if value is None or value == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise _invalid(f"invalid {message_type}.PageSize: value must be an integer") from None
    if not 1 <= size <= 100:
        raise _invalid(
            f"invalid {message_type}.PageSize: value must be inside range [1, 100]",
            ErrorCode.page_size_invalid,
        )
    return size


def _tuple_key(
    raw: Any, message_type: str, *, with_condition: bool = True, user_pattern: str = _USER_PATTERN
) -> TupleKey:
    """A `TupleKey` JSON object, checked against the proto's patterns."""
    if not isinstance(raw, dict):
        raise _invalid(f"invalid {message_type}: a tuple key must be a JSON object")
    user, relation, obj = raw.get("user"), raw.get("relation"), raw.get("object")
    for name, value, pattern, code in (
        ("User", user, user_pattern, ErrorCode.validation_error),
        ("Relation", relation, _RELATION_PATTERN, ErrorCode.validation_error),
        ("Object", obj, _OBJECT_PATTERN, ErrorCode.object_invalid_pattern),
    ):
        if not isinstance(value, str) or not re.match(pattern, value):
            raise _invalid(
                f'invalid {message_type}.{name}: value does not match regex pattern "{pattern}"',
                code,
            )
    condition = raw.get("condition") if with_condition else None
    name, context = None, None
    if condition is not None:
        if not isinstance(condition, dict) or not isinstance(condition.get("name"), str):
            raise _invalid(f"invalid {message_type}.Condition: a condition needs a name")
        name = condition["name"]
        if not re.match(r"^[^\s]{2,256}$", name):
            raise _invalid(
                f'invalid RelationshipCondition.Name: value does not match regex pattern "{_RELATION_PATTERN}"'  # noqa: E501
            )
        context = condition.get("context")
        if context is not None and not isinstance(context, dict):
            raise _invalid("invalid RelationshipCondition.Context: context must be a JSON object")
    return TupleKey(
        user=user,  # type: ignore[arg-type]
        relation=relation,  # type: ignore[arg-type]
        object=obj,  # type: ignore[arg-type]
        condition_name=name,
        condition_context=context,
    )


def _tuple_list(raw: Any, message_type: str, limit: int) -> list[TupleKey]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid(f"invalid {message_type}.TupleKeys: value must be a list")
    if len(raw) > limit:
        raise _invalid(
            f"invalid {message_type}.TupleKeys: value must contain no more than {limit} item(s)"
        )
    return [_tuple_key(t, "TupleKey") for t in raw]


def _contextual_tuples(body: dict[str, Any]) -> list[TupleKey]:
    raw = body.get("contextual_tuples")
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise _invalid("invalid ContextualTupleKeys: contextual_tuples must be an object")
    return _tuple_list(raw.get("tuple_keys"), "ContextualTupleKeys", MAX_CONTEXTUAL_TUPLES)


# ------------------------------------------------------------------------------------------------
# response shapes


def _tuple_key_json(tk: TupleKey) -> dict[str, Any]:
    out: dict[str, Any] = {"user": tk.user, "relation": tk.relation, "object": tk.object}
    if tk.condition_name:
        out["condition"] = {"name": tk.condition_name, "context": tk.condition_context or {}}
    return out


def _store_json(store: dict[str, Any], *, with_deleted: bool = False) -> dict[str, Any]:
    out = {
        "id": store["id"],
        "name": store["name"],
        "created_at": store["created_at"],
        "updated_at": store["updated_at"],
    }
    if with_deleted:
        out["deleted_at"] = None
    return out


def _model_json(model: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": model["id"],
        "schema_version": model.get("schema_version", "1.1"),
        "type_definitions": model.get("type_definitions") or [],
        "conditions": model.get("conditions") or {},
    }


def _user_json(user: str) -> dict[str, Any]:
    """A list-users result as OpenFGA's `User`: object, userset or wildcard."""
    obj, _, relation = user.partition("#")
    user_type, _, user_id = obj.partition(":")
    if relation:
        return {"userset": {"type": user_type, "id": user_id, "relation": relation}}
    if user_id == "*":
        return {"wildcard": {"type": user_type}}
    return {"object": {"type": user_type, "id": user_id}}


def _encode_offset(kind: str, scope: str, offset: int) -> str:
    raw = json.dumps({"k": kind, "s": scope, "o": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_offset(token: str, kind: str, scope: str) -> int:
    if not token:
        return 0
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
        if payload["k"] == kind and payload["s"] == scope and isinstance(payload["o"], int):
            return max(0, payload["o"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        pass
    raise _invalid("Invalid continuation token", ErrorCode.invalid_continuation_token)


# ------------------------------------------------------------------------------------------------
# the application


class OpenFGAAPI:
    """The request handlers, bound to one `Store` (one SQLite file holds any number of stores)."""

    def __init__(
        self,
        store: Store,
        *,
        list_max_results: int = DEFAULT_LIST_MAX_RESULTS,
        max_checks_per_batch: int = MAX_CHECKS_PER_BATCH,
    ) -> None:
        self.store = store
        self.list_max_results = list_max_results
        self.max_checks_per_batch = max_checks_per_batch

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Store and engine calls are blocking: run them off the event loop."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except FGAError as e:
            raise _from_fga(e) from None

    def _typesystem(self, store_id: str, model_id: str | None) -> engine.TypeSystem:
        """The model a query runs against, with OpenFGA's errors for a missing one.

        OpenFGA resolves the model before it looks at the store, so a query on an unknown store
        answers "no models" (400), not "no store" (404).
        """
        try:
            return self.store.typesystem(store_id, model_id)
        except FGAError as e:
            if e.code == ErrorCode.store_id_not_found:
                if model_id is None:
                    raise FGAError(
                        ErrorCode.latest_authorization_model_not_found,
                        f"No authorization models found for store '{store_id}'",
                    ) from None
                raise FGAError(
                    ErrorCode.authorization_model_not_found,
                    f"Authorization Model '{model_id}' not found",
                ) from None
            raise

    # stores ----------------------------------------------------------------------------------

    async def create_store(self, request: Request) -> Response:
        body = await _body(request)
        name = _str(body, "name", "CreateStoreRequest")
        if not _STORE_NAME.match(name):
            raise _pattern_error("CreateStoreRequest", "Name", _STORE_NAME_PATTERN)
        store_id = await self._run(self.store.create_store, name)
        store = await self._run(self.store.get_store, store_id)
        return JSONResponse(_store_json(store), status_code=201)

    async def list_stores(self, request: Request) -> Response:
        size = _page_size(request.query_params.get("page_size"), "ListStoresRequest")
        token = request.query_params.get("continuation_token", "")
        name = request.query_params.get("name")
        offset = _decode_offset(token, "stores", name or "")
        stores = await self._run(self.store.list_stores)
        if name:
            stores = [s for s in stores if s["name"] == name]
        page = stores[offset : offset + size]
        more = offset + size < len(stores)
        return JSONResponse(
            {
                "stores": [_store_json(s, with_deleted=True) for s in page],
                "continuation_token": _encode_offset("stores", name or "", offset + size)
                if more
                else "",
            }
        )

    async def get_store(self, request: Request) -> Response:
        store_id = _store_id(request, "GetStoreRequest")
        store = await self._run(self.store.get_store, store_id)
        return JSONResponse(_store_json(store, with_deleted=True))

    async def delete_store(self, request: Request) -> Response:
        store_id = _store_id(request, "DeleteStoreRequest")
        await self._run(self.store.delete_store, store_id)
        return Response(status_code=204)

    # authorization models ----------------------------------------------------------------------

    async def write_model(self, request: Request) -> Response:
        store_id = _store_id(request, "WriteAuthorizationModelRequest")
        body = await _body(request)
        type_definitions = body.get("type_definitions")
        if not isinstance(type_definitions, list) or not type_definitions:
            raise _invalid(
                "invalid WriteAuthorizationModelRequest.TypeDefinitions: "
                "value must contain at least 1 item(s)",
                ErrorCode.type_definitions_too_few_items,
            )
        schema = body.get("schema_version")
        if schema not in ("1.0", "1.1", "1.2"):
            raise _invalid(
                "invalid WriteAuthorizationModelRequest.SchemaVersion: "
                "value must be in list [1.0 1.1 1.2]"
            )
        conditions = body.get("conditions")
        if conditions is not None and not isinstance(conditions, dict):
            raise _invalid("invalid WriteAuthorizationModelRequest.Conditions: must be an object")
        model = {"schema_version": schema, "type_definitions": type_definitions}
        if conditions:
            model["conditions"] = conditions
        model_id = await self._run(self.store.write_model, store_id, model)
        return JSONResponse({"authorization_model_id": model_id}, status_code=201)

    async def list_models(self, request: Request) -> Response:
        store_id = _store_id(request, "ReadAuthorizationModelsRequest")
        size = _page_size(request.query_params.get("page_size"), "ReadAuthorizationModelsRequest")
        offset = _decode_offset(
            request.query_params.get("continuation_token", ""), "models", store_id
        )
        try:
            models = await asyncio.to_thread(self.store.list_models, store_id)
        except FGAError as e:
            if e.code != ErrorCode.store_id_not_found:
                raise _from_fga(e) from None
            models = []  # OpenFGA lists no models for a store it does not know
        page = models[offset : offset + size]
        more = offset + size < len(models)
        return JSONResponse(
            {
                "authorization_models": [_model_json(m) for m in page],
                "continuation_token": _encode_offset("models", store_id, offset + size)
                if more
                else "",
            }
        )

    async def read_model(self, request: Request) -> Response:
        store_id = _store_id(request, "ReadAuthorizationModelRequest")
        model_id = request.path_params["model_id"]
        if not _ULID.match(model_id):
            raise _pattern_error("ReadAuthorizationModelRequest", "Id", _ULID_PATTERN)
        try:
            model = await asyncio.to_thread(self.store.read_model, store_id, model_id)
        except FGAError as e:
            if e.code == ErrorCode.store_id_not_found:
                raise _from_fga(
                    FGAError(
                        ErrorCode.authorization_model_not_found,
                        f"Authorization Model '{model_id}' not found",
                    )
                ) from None
            raise _from_fga(e) from None
        return JSONResponse({"authorization_model": _model_json(model)})

    # tuples ----------------------------------------------------------------------------------

    async def write(self, request: Request) -> Response:
        store_id = _store_id(request, "WriteRequest")
        body = await _body(request)
        model_id = _model_id(body, "WriteRequest")
        writes_raw, deletes_raw = body.get("writes"), body.get("deletes")
        writes = self._write_part(writes_raw, "WriteRequestWrites", with_condition=True)
        deletes = self._write_part(deletes_raw, "WriteRequestDeletes", with_condition=False)
        if not writes and not deletes:
            raise _invalid(
                "Invalid input. Make sure you provide at least one write, or at least one delete",
                ErrorCode.invalid_write_input,
            )
        if len(writes) + len(deletes) > MAX_TUPLES_PER_WRITE:
            raise _invalid(
                "The number of write operations exceeds the allowed limit of "
                f"{MAX_TUPLES_PER_WRITE}",
                ErrorCode.exceeded_entity_limit,
            )
        ignore_duplicates = isinstance(writes_raw, dict) and writes_raw.get("on_duplicate") == (
            "ignore"
        )
        ignore_missing = isinstance(deletes_raw, dict) and deletes_raw.get("on_missing") == (
            "ignore"
        )

        def run() -> None:
            self._typesystem(store_id, model_id)  # the model errors come first, as in OpenFGA
            w, d = writes, deletes
            if ignore_duplicates or ignore_missing:
                source = self.store.source(store_id)
                if ignore_duplicates:
                    w = [
                        t for t in w if source.read_user_tuple(t.object, t.relation, t.user) is None
                    ]
                if ignore_missing:
                    d = [t for t in d if source.read_user_tuple(t.object, t.relation, t.user)]
                if not w and not d:
                    return
            self.store.write(store_id, w, d, model_id)

        await self._run(run)
        return JSONResponse({})

    @staticmethod
    def _write_part(raw: Any, message_type: str, *, with_condition: bool) -> list[TupleKey]:
        if raw is None:
            return []
        if not isinstance(raw, dict):
            raise _invalid(f"invalid WriteRequest.{message_type[12:]}: must be an object")
        keys = raw.get("tuple_keys")
        if not isinstance(keys, list) or not keys:
            raise _invalid(
                f"invalid {message_type}.TupleKeys: value must contain at least 1 item(s)"
            )
        mode = raw.get("on_duplicate" if with_condition else "on_missing")
        if mode not in (None, "", "error", "ignore"):
            raise _invalid(f"invalid {message_type}: unknown conflict option {mode!r}")
        return [
            _tuple_key(
                t,
                "TupleKey" if with_condition else "TupleKeyWithoutCondition",
                with_condition=with_condition,
            )
            for t in keys
        ]

    async def read(self, request: Request) -> Response:
        store_id = _store_id(request, "ReadRequest")
        body = await _body(request)
        _consistency(body, "ReadRequest")
        size = _page_size(body.get("page_size"), "ReadRequest")
        token = _str(body, "continuation_token", "ReadRequest")
        key = body.get("tuple_key") or {}
        if not isinstance(key, dict):
            raise _invalid("invalid ReadRequest.TupleKey: must be an object")
        user = _str(key, "user", "ReadRequestTupleKey") or None
        relation = _str(key, "relation", "ReadRequestTupleKey") or None
        obj = _str(key, "object", "ReadRequestTupleKey") or None
        if relation and not re.match(_RELATION_PATTERN, relation):
            raise _pattern_error("ReadRequestTupleKey", "Relation", _RELATION_PATTERN)
        if obj and not re.match(_OBJECT_PATTERN, obj):
            raise _invalid(
                f'invalid ReadRequestTupleKey.Object: value does not match regex pattern "{_OBJECT_PATTERN}"',  # noqa: E501
                ErrorCode.object_invalid_pattern,
            )

        def run() -> tuple[list[TupleKey], str, dict[tuple[str, str, str], str]]:
            try:
                self.store.get_store(store_id)
            except FGAError as e:
                if e.code == ErrorCode.store_id_not_found:
                    return [], "", {}  # OpenFGA reads an unknown store as an empty one
                raise
            page, next_token = self.store.read(
                store_id,
                user=user,
                relation=relation,
                object=obj,
                page_size=size,
                continuation_token=token or None,
            )
            return page, next_token, _timestamps(self.store, store_id, page)

        page, next_token, stamps = await self._run(run)
        return JSONResponse(
            {
                "tuples": [
                    {
                        "key": _tuple_key_json(t),
                        "timestamp": stamps.get((t.object, t.relation, t.user), ""),
                    }
                    for t in page
                ],
                "continuation_token": next_token,
            }
        )

    async def read_changes(self, request: Request) -> Response:
        store_id = _store_id(request, "ReadChangesRequest")
        size = _page_size(request.query_params.get("page_size"), "ReadChangesRequest")
        object_type = request.query_params.get("type") or None
        token = request.query_params.get("continuation_token") or None
        changes, next_token = await self._run(
            self.store.read_changes,
            store_id,
            object_type=object_type,
            page_size=size,
            continuation_token=token,
        )
        return JSONResponse(
            {
                "changes": [
                    {
                        "tuple_key": _tuple_key_json(c["tuple_key"]),
                        "operation": c["operation"],
                        "timestamp": c["timestamp"],
                    }
                    for c in changes
                ],
                "continuation_token": next_token,
            }
        )

    # queries ---------------------------------------------------------------------------------

    async def check(self, request: Request) -> Response:
        store_id = _store_id(request, "CheckRequest")
        body = await _body(request)
        model_id = _model_id(body, "CheckRequest")
        _consistency(body, "CheckRequest")
        if body.get("tuple_key") is None:
            raise _invalid(
                "invalid CheckRequest.TupleKey: value is required",
                ErrorCode.tuple_key_value_not_specified,
            )
        tk = _tuple_key(body["tuple_key"], "CheckRequestTupleKey", with_condition=False)
        contextual = _contextual_tuples(body)
        context = _context(body, "CheckRequest")

        def run() -> bool:
            ts = self._typesystem(store_id, model_id)
            return engine.check(
                ts,
                self.store.source(store_id),
                tk.user,
                tk.relation,
                tk.object,
                contextual_tuples=contextual,
                context=context,
            )

        allowed = await self._run(run)
        return JSONResponse({"allowed": allowed, "resolution": ""})

    async def batch_check(self, request: Request) -> Response:
        store_id = _store_id(request, "BatchCheckRequest")
        body = await _body(request)
        model_id = _model_id(body, "BatchCheckRequest")
        _consistency(body, "BatchCheckRequest")
        raw_checks = body.get("checks")
        if raw_checks is None:
            raw_checks = []
        if not isinstance(raw_checks, list):
            raise _invalid("invalid BatchCheckRequest.Checks: value must be a list")
        items: list[tuple[str, CheckRequest]] = []
        for raw in raw_checks:
            if not isinstance(raw, dict):
                raise _invalid("invalid BatchCheckItem: must be an object")
            if raw.get("tuple_key") is None:
                raise _invalid(
                    "invalid BatchCheckItem.TupleKey: value is required",
                    ErrorCode.tuple_key_value_not_specified,
                )
            tk = _tuple_key(raw["tuple_key"], "CheckRequestTupleKey", with_condition=False)
            correlation_id = raw.get("correlation_id")
            if not isinstance(correlation_id, str) or not re.match(
                _CORRELATION_PATTERN, correlation_id
            ):
                raise _pattern_error("BatchCheckItem", "CorrelationId", _CORRELATION_PATTERN)
            req = CheckRequest(
                user=tk.user,
                relation=tk.relation,
                object=tk.object,
                contextual_tuples=tuple(_contextual_tuples(raw)),
                context=_context(raw, "BatchCheckItem"),
            )
            items.append((correlation_id, req))
        # the command's own checks, after the model is resolved (as OpenFGA orders them)
        await self._run(self._typesystem, store_id, model_id)
        if len(items) > self.max_checks_per_batch:
            raise _invalid(
                f"batchCheck received {len(items)} checks, the maximum allowed is "
                f"{self.max_checks_per_batch} "
            )
        if not items:
            raise _invalid(
                "batch check requires at least one check to evaluate, no checks were received"
            )
        seen: set[str] = set()
        for correlation_id, _ in items:
            if correlation_id in seen:
                raise _invalid(f"received duplicate correlation id: {correlation_id}")
            seen.add(correlation_id)

        def run() -> dict[str, Any]:
            ts = self._typesystem(store_id, model_id)
            source = self.store.source(store_id)
            results = engine.batch_check(ts, source, [req for _, req in items])
            out: dict[str, Any] = {}
            for (correlation_id, req), result in zip(items, results, strict=True):
                if result.error is None:
                    out[correlation_id] = {"allowed": result.allowed}
                    continue
                out[correlation_id] = {"error": _check_error(ts, source, req)}
            return out

        result = await self._run(run)
        return JSONResponse({"result": result})

    async def list_objects(self, request: Request) -> Response:
        store_id = _store_id(request, "ListObjectsRequest")
        body = await _body(request)
        model_id = _model_id(body, "ListObjectsRequest")
        _consistency(body, "ListObjectsRequest")
        object_type = _str(body, "type", "ListObjectsRequest")
        relation = _str(body, "relation", "ListObjectsRequest")
        user = _str(body, "user", "ListObjectsRequest")
        if not re.match(_TYPE_PATTERN, object_type):
            raise _invalid(
                f'invalid ListObjectsRequest.Type: value does not match regex pattern "{_TYPE_PATTERN}"',  # noqa: E501
                ErrorCode.type_invalid_pattern,
            )
        if not re.match(_RELATION_PATTERN, relation):
            raise _pattern_error("ListObjectsRequest", "Relation", _RELATION_PATTERN)
        if not 1 <= len(user.encode()) <= 512:
            raise _invalid(
                "invalid ListObjectsRequest.User: value length must be between 1 and 512 bytes, "
                "inclusive"
            )
        contextual = _contextual_tuples(body)
        context = _context(body, "ListObjectsRequest")

        def run() -> list[str]:
            ts = self._typesystem(store_id, model_id)
            return engine.list_objects(
                ts,
                self.store.source(store_id),
                user,
                relation,
                object_type,
                contextual_tuples=contextual,
                context=context,
                limit=self.list_max_results,
            )

        objects = await self._run(run)
        return JSONResponse({"objects": objects})

    async def list_users(self, request: Request) -> Response:
        store_id = _store_id(request, "ListUsersRequest")
        body = await _body(request)
        model_id = _model_id(body, "ListUsersRequest")
        _consistency(body, "ListUsersRequest")
        obj = body.get("object")
        if not isinstance(obj, dict):
            raise _invalid("invalid ListUsersRequest.Object: value is required")
        obj_type, obj_id = obj.get("type"), obj.get("id")
        if not isinstance(obj_type, str) or not re.match(_TYPE_PATTERN, obj_type):
            raise _pattern_error("Object", "Type", _TYPE_PATTERN)
        if not isinstance(obj_id, str) or not re.match(r"^[^#:\s]+$", obj_id):
            raise _pattern_error("Object", "Id", r"^[^#:\s]+$")
        relation = _str(body, "relation", "ListUsersRequest")
        if not re.match(_RELATION_PATTERN, relation):
            raise _pattern_error("ListUsersRequest", "Relation", _RELATION_PATTERN)
        filters = body.get("user_filters")
        if not isinstance(filters, list) or len(filters) != 1:
            raise _invalid(
                "invalid ListUsersRequest.UserFilters: value must contain exactly 1 item(s)"
            )
        flt = filters[0]
        if not isinstance(flt, dict) or not isinstance(flt.get("type"), str):
            raise _invalid("invalid UserTypeFilter.Type: value is required")
        if not re.match(_TYPE_PATTERN, flt["type"]):
            raise _pattern_error("UserTypeFilter", "Type", _TYPE_PATTERN)
        filter_relation = flt.get("relation") or ""
        if not isinstance(filter_relation, str) or (
            filter_relation and not re.match(_RELATION_PATTERN, filter_relation)
        ):
            raise _pattern_error("UserTypeFilter", "Relation", _RELATION_PATTERN)
        user_filter = flt["type"] + (f"#{filter_relation}" if filter_relation else "")
        contextual = _tuple_list(
            body.get("contextual_tuples"), "ListUsersRequest", MAX_LIST_USERS_CONTEXTUAL_TUPLES
        )
        context = _context(body, "ListUsersRequest")

        def run() -> list[str]:
            ts = self._typesystem(store_id, model_id)
            return engine.list_users(
                ts,
                self.store.source(store_id),
                f"{obj_type}:{obj_id}",
                relation,
                [user_filter],
                contextual_tuples=contextual,
                context=context,
            )

        users = (await self._run(run))[: self.list_max_results]
        return JSONResponse({"users": [_user_json(u) for u in users]})


def _check_error(ts: engine.TypeSystem, source: Any, req: CheckRequest) -> dict[str, Any]:
    """The `CheckError` of one failed batch item, with the input error's code name.

    The engine's batch answer carries only the message; the single check is replayed to learn
    the code (errors are rare, and the replay fails the same way).
    """
    try:
        engine.check(
            ts,
            source,
            req.user,
            req.relation,
            req.object,
            contextual_tuples=req.contextual_tuples,
            context=req.context,
        )
    except FGAError as e:
        if int(e.code) >= 4000:
            return {"internal_error": "internal_error", "message": e.message}
        return {"input_error": e.name, "message": e.message}
    except Exception:  # an engine fault: say so without details, as OpenFGA does
        return {"internal_error": "internal_error", "message": "Internal Server Error"}
    return {"internal_error": "internal_error", "message": "Internal Server Error"}


def _timestamps(
    store: Store, store_id: str, page: Sequence[TupleKey]
) -> dict[tuple[str, str, str], str]:
    """When each tuple of a read page was written (OpenFGA's `Tuple.timestamp`).

    `Store.read` returns keys only; the times come from the same table, one query per page.
    """
    if not page:
        return {}
    objects = sorted({t.object for t in page})
    marks = ",".join("?" * len(objects))
    # only "?" placeholders are interpolated; the values travel as parameters
    sql = (
        "SELECT object, relation, user, inserted_at FROM fga_tuples "  # noqa: S608
        f"WHERE store_id = ? AND object IN ({marks})"
    )
    rows = store._query(sql, (store_id, *objects))
    return {(r[0], r[1], r[2]): r[3] for r in rows}


def _error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _guard(handler: Handler, keys: Sequence[str]) -> Handler:
    """Authentication (OpenFGA's preshared keys) and OpenFGA's error bodies around a handler."""

    async def wrapped(request: Request) -> Response:
        if keys:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token:
                return _error_response(401, "bearer_token_missing", "missing bearer token")
            if token.strip() not in keys:
                return _error_response(401, "unauthenticated", "unauthenticated")
        try:
            return await handler(request)
        except APIError as e:
            return _error_response(e.status, e.code, e.message)
        except FGAError as e:
            return _error_response(e.http_status, e.name, e.message)
        except Exception:  # never a stack trace to the caller; OpenFGA's opaque 500
            return _error_response(500, "internal_error", "Internal Server Error")

    return wrapped


def create_openfga_app(
    settings: Any = None,
    *,
    store: Store | None = None,
    preshared_keys: Sequence[str] | None = None,
    list_max_results: int = DEFAULT_LIST_MAX_RESULTS,
) -> Starlette:
    """OpenFGA's HTTP API over the embedded engine.

    `store` defaults to the SQLite file the local backend uses (`fga.sqlite3` in the data dir),
    so the devstack serves the same tuples `warrant fga` reads and writes. `preshared_keys`
    defaults to the configured `fga_api_token` (when set, requests need `Bearer <key>`).
    """
    if settings is None:
        from settings import get_settings

        settings = get_settings()
    if store is None:
        store = Store(settings.path("fga.sqlite3"))
    if preshared_keys is None:
        token = getattr(settings, "fga_api_token", None)
        preshared_keys = [token.get_secret_value()] if token is not None else []
    keys = [k for k in preshared_keys if k]
    api = OpenFGAAPI(store, list_max_results=list_max_results)

    def route(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, _guard(handler, keys), methods=methods)

    routes = [
        route("/stores", api.create_store, ["POST"]),
        route("/stores", api.list_stores, ["GET"]),
        route("/stores/{store_id}", api.get_store, ["GET"]),
        route("/stores/{store_id}", api.delete_store, ["DELETE"]),
        route("/stores/{store_id}/authorization-models", api.write_model, ["POST"]),
        route("/stores/{store_id}/authorization-models", api.list_models, ["GET"]),
        route("/stores/{store_id}/authorization-models/{model_id}", api.read_model, ["GET"]),
        route("/stores/{store_id}/write", api.write, ["POST"]),
        route("/stores/{store_id}/read", api.read, ["POST"]),
        route("/stores/{store_id}/changes", api.read_changes, ["GET"]),
        route("/stores/{store_id}/check", api.check, ["POST"]),
        route("/stores/{store_id}/batch-check", api.batch_check, ["POST"]),
        route("/stores/{store_id}/list-objects", api.list_objects, ["POST"]),
        route("/stores/{store_id}/list-users", api.list_users, ["POST"]),
        Route("/healthz", _healthz, methods=["GET"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            return _error_response(404, "unimplemented", "Method Not Allowed")
        return _error_response(404, "undefined_endpoint", "Not Found")

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error_response(500, "internal_error", "Internal Server Error")

    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: not_found, 500: server_error},
    )
    app.state.store = store
    app.state.api = api
    return app


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "SERVING"})
