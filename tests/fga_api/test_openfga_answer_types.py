"""A server that answers FGA questions with JSON of the wrong type is unavailable, never a yes.

openfga-sdk's models read `"allowed": "false"` as True and a string `objects` as its characters;
the client must read the JSON itself. Each wrong answer below comes from a tiny fake OpenFGA
served over HTTP, and each must fail closed with `ProviderUnavailable`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.errors import ProviderUnavailable
from auth.fga.client import CheckRequest
from auth.fga.openfga_client import OpenFGA
from tests.fga_api.helpers import ServerThread
from vectorstore.retriever import FGARetriever
from vectorstore.store import Hit

STORE = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
MISSING = object()  # the field is left out of the answer

WRONG_DECISIONS: list[Any] = ["false", "true", 1, 0, None, MISSING, [], {}, "yes"]


def fake_openfga(
    check: Callable[[dict[str, Any]], Any] | None = None,
    batch: Callable[[dict[str, Any]], Any] | None = None,
    objects: Callable[[dict[str, Any]], Any] | None = None,
) -> Starlette:
    """OpenFGA's three query endpoints, each answering what its function returns for the body."""

    def endpoint(answer: Callable[[dict[str, Any]], Any] | None):
        async def handle(request: Request) -> Response:
            if answer is None:
                return JSONResponse({"code": "undefined_endpoint", "message": "no"}, 404)
            body = answer(await request.json())
            if isinstance(body, bytes):
                return Response(body, media_type="application/json")
            return Response(json.dumps(body), media_type="application/json")

        return handle

    return Starlette(
        routes=[
            Route("/stores/{store}/check", endpoint(check), methods=["POST"]),
            Route("/stores/{store}/batch-check", endpoint(batch), methods=["POST"]),
            Route("/stores/{store}/list-objects", endpoint(objects), methods=["POST"]),
        ]
    )


@asynccontextmanager
async def openfga_over(app: Starlette) -> AsyncIterator[OpenFGA]:
    """An OpenFGA client (no retries) talking to `app`, served on a local port."""
    with ServerThread(app) as srv:
        fga = OpenFGA(srv.url, STORE, max_retries=0)
        try:
            yield fga
        finally:
            await fga.close()


def with_allowed(value: Any) -> dict[str, Any]:
    return {"resolution": ""} if value is MISSING else {"allowed": value, "resolution": ""}


@pytest.mark.parametrize(
    "value", WRONG_DECISIONS, ids=lambda v: "missing" if v is MISSING else repr(v)
)
async def test_check_with_a_decision_that_is_not_a_json_boolean_fails_closed(value: Any) -> None:
    async with openfga_over(fake_openfga(check=lambda _: with_allowed(value))) as fga:
        with pytest.raises(ProviderUnavailable) as e:
            await fga.check("user:anne", "viewer", "doc:1")
        assert "not OpenFGA's" in str(e.value)


@pytest.mark.parametrize(
    "body", [b'"allowed"', b"[true]", b"true", b"null", b"", b"{not json"], ids=repr
)
async def test_check_answer_that_is_not_a_json_object_fails_closed(body: bytes) -> None:
    async with openfga_over(fake_openfga(check=lambda _: body)) as fga:
        with pytest.raises(ProviderUnavailable):
            await fga.check("user:anne", "viewer", "doc:1")


async def test_json_booleans_still_decide() -> None:
    answers = {"doc:yes": True, "doc:no": False}

    def check(body: dict[str, Any]) -> dict[str, Any]:
        return with_allowed(answers[body["tuple_key"]["object"]])

    def batch(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "result": {
                c["correlation_id"]: {"allowed": answers[c["tuple_key"]["object"]]}
                for c in body["checks"]
            }
        }

    app = fake_openfga(check=check, batch=batch, objects=lambda _: {"objects": ["doc:yes"]})
    async with openfga_over(app) as fga:
        assert await fga.check("user:anne", "viewer", "doc:yes") is True
        assert await fga.check("user:anne", "viewer", "doc:no") is False
        results = await fga.batch_check(
            [CheckRequest("user:anne", "viewer", o) for o in ("doc:no", "doc:yes")]
        )
        assert [(r.allowed, r.error) for r in results] == [(False, None), (True, None)]
        assert await fga.list_objects("user:anne", "viewer", "doc") == ["doc:yes"]


def _batch_answer(item: Callable[[], Any]) -> Callable[[dict[str, Any]], Any]:
    return lambda body: {"result": {c["correlation_id"]: item() for c in body["checks"]}}


@pytest.mark.parametrize(
    "answer",
    [
        *[_batch_answer(lambda v=v: with_allowed(v)) for v in WRONG_DECISIONS],
        _batch_answer(lambda: "false"),  # an item that is not an object
        _batch_answer(lambda: {"error": "boom"}),  # an error that is not an object
        lambda _: {"result": "false"},
        lambda _: {"result": []},
        lambda _: {"result": None},
        lambda _: {},
        lambda _: ["result"],
    ],
)
async def test_batch_check_with_answers_of_the_wrong_type_fails_closed(answer: Any) -> None:
    async with openfga_over(fake_openfga(batch=answer)) as fga:
        with pytest.raises(ProviderUnavailable):
            await fga.batch_check([CheckRequest("user:anne", "viewer", "doc:1")])


@pytest.mark.parametrize(
    "answer",
    [
        {"objects": "doc:a,doc:b"},  # a list as a string: no longer read as []
        {"objects": ""},
        {"objects": None},
        {"objects": 3},
        {"objects": [1, 2]},
        {"objects": ["doc:a", None]},
        {"objects": [["doc:a"]]},
        {},
        ["doc:a"],
        "doc:a",
    ],
    ids=repr,
)
async def test_list_objects_with_answers_of_the_wrong_type_fails_closed(answer: Any) -> None:
    async with openfga_over(fake_openfga(objects=lambda _: answer)) as fga:
        with pytest.raises(ProviderUnavailable):
            await fga.list_objects("user:anne", "viewer", "doc")


class TwoDocuments:
    """A vector index holding one chunk of each of two documents the user may not see."""

    def embed_query(self, text: str) -> list[float]:
        return [0.0]

    def query(self, embedding: Any, n: int, where: Any = None) -> list[Hit]:
        return [
            Hit("secret-a:0", "salaries", {"doc_id": "secret-a", "chunk_index": 0}),
            Hit("secret-b:0", "layoffs", {"doc_id": "secret-b", "chunk_index": 0}),
        ][:n]


async def test_retriever_over_an_openfga_answering_string_false_returns_nothing() -> None:
    """The reported leak: list cut short, then `"allowed": "false"` for every document."""
    app = fake_openfga(
        batch=_batch_answer(lambda: {"allowed": "false"}),
        objects=lambda _: {"objects": ["doc:other"]},
    )
    async with openfga_over(app) as fga:
        retriever = FGARetriever(
            user="user:anne@example.com", fga=fga, store=TwoDocuments(), k=2, list_limit=1
        )
        with pytest.raises(ProviderUnavailable):
            await retriever.search("pay")
