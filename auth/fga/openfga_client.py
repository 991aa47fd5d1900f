"""`OpenFGA`: the `FGAClient` answered by an OpenFGA server or Okta FGA through `openfga-sdk`.

Failures are typed for the caller, who fails closed on both:
- the service is down, slow, refusing our credentials or failing (connection error, timeout,
  401/403, 429 and 5xx after the SDK's retries, a body that is not OpenFGA's, a decision that
  is not a JSON boolean, an object list that is not a list of strings) ->
  `auth.errors.ProviderUnavailable`;
- the request itself is wrong (400/404 with OpenFGA's error body: unknown type, invalid tuple,
  too many tuples, unknown store or model) -> `auth.fga.errors.FGAError` with OpenFGA's code.
Messages name the server and the fault, never a token or a secret.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlparse

import aiohttp
from openfga_sdk.client import ClientConfiguration, OpenFgaClient
from openfga_sdk.client.models import (
    ClientTuple,
    ClientWriteRequest,
)
from openfga_sdk.client.models.list_users_request import ClientListUsersRequest
from openfga_sdk.configuration import RetryParams
from openfga_sdk.credentials import CredentialConfiguration, Credentials
from openfga_sdk.exceptions import (
    ApiException,
    ApiValueError,
    AuthenticationError,
    FgaValidationException,
    ForbiddenException,
    RateLimitExceededError,
    ServiceException,
    UnauthorizedException,
)
from openfga_sdk.models import FgaObject, ReadRequestTupleKey, UserTypeFilter
from openfga_sdk.models.relationship_condition import RelationshipCondition

from auth.errors import ProviderUnavailable
from auth.fga.client import CheckRequest, CheckResult, Consistency, TupleKey
from auth.fga.errors import ErrorCode, FGAError

SERVICE = "OpenFGA"
BATCH_SIZE = 50  # OpenFGA's default limit of checks per batch-check request
READ_PAGE_SIZE = 100
MAX_PARALLEL_REQUESTS = 10  # batch-check requests in flight at once (openfga-sdk's default)

T = TypeVar("T")


class OpenFGA:
    """An OpenFGA store (and optionally a pinned model) behind the `FGAClient` interface.

    Credentials: none, an API token (OpenFGA preshared key), or client credentials (Okta FGA:
    client id and secret exchanged at `api_token_issuer` for `api_audience`). The SDK retries
    429 and 5xx answers `max_retries` times with backoff; connection failures (nothing was
    sent) are retried here the same number of times.
    """

    def __init__(
        self,
        api_url: str,
        store_id: str,
        model_id: str | None = None,
        *,
        api_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        api_token_issuer: str | None = None,
        api_audience: str | None = None,
        timeout_seconds: float = 5.0,
        max_retries: int = 3,
        min_wait_ms: int = 100,
        consistency: Consistency | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if not api_url or urlparse(api_url).scheme not in ("http", "https"):
            raise ValueError(f"FGA API URL must be http(s)://host[:port], got {api_url!r}")
        if not store_id:
            raise ValueError("an OpenFGA store id is required (WARRANT_FGA_STORE_ID)")
        if client_id and not (client_secret and api_token_issuer):
            raise ValueError(
                "client credentials need a client secret and a token issuer "
                "(WARRANT_FGA_CLIENT_SECRET, WARRANT_FGA_API_TOKEN_ISSUER)"
            )
        if not 1 <= batch_size <= BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {BATCH_SIZE}")
        self.api_url = api_url.rstrip("/")
        self.store_id = store_id
        self.model_id = model_id or None
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.consistency = consistency
        self.batch_size = batch_size
        self._host = urlparse(self.api_url).netloc
        self._credentials = _credentials(
            api_token, client_id, client_secret, api_token_issuer, api_audience
        )
        self._retry = RetryParams(max_retry=max_retries, min_wait_in_ms=min_wait_ms)
        self._client: OpenFgaClient | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> OpenFGA:
        """The client the settings describe (`WARRANT_FGA_*`)."""

        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        return cls(
            settings.fga_api_url,
            settings.fga_store_id or "",
            settings.fga_model_id,
            api_token=secret(settings.fga_api_token),
            client_id=settings.fga_client_id,
            client_secret=secret(settings.fga_client_secret),
            api_token_issuer=settings.fga_api_token_issuer,
            api_audience=settings.fga_api_audience,
            timeout_seconds=settings.fga_timeout_seconds,
            max_retries=settings.fga_max_retries,
            consistency=settings.fga_consistency,
        )

    def __repr__(self) -> str:
        return f"OpenFGA(api_url={self.api_url!r}, store_id={self.store_id!r})"

    # the SDK client is created on first use, inside the event loop its aiohttp session needs
    def _sdk(self) -> OpenFgaClient:
        if self._client is None:
            config = ClientConfiguration(
                api_url=self.api_url,
                store_id=self.store_id,
                authorization_model_id=self.model_id,
                credentials=self._credentials,
                retry_params=self._retry,
                timeout_millisec=max(1, int(self.timeout_seconds * 1000)),
            )
            try:
                self._client = OpenFgaClient(config)
            except (ApiValueError, FgaValidationException) as e:
                raise FGAError(
                    ErrorCode.validation_error, f"invalid OpenFGA settings: {e}"
                ) from None
        return self._client

    def _options(self, **extra: Any) -> dict[str, Any]:
        options: dict[str, Any] = dict(extra)
        if self.consistency:
            options["consistency"] = self.consistency
        return options

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one SDK call, retrying connection failures and mapping every failure to a type."""
        attempt = 0
        while True:
            try:
                return await fn()
            except aiohttp.ClientConnectorError:
                # the request never left: safe to retry, even a write
                if attempt >= self.max_retries:
                    raise ProviderUnavailable(
                        SERVICE, f"cannot connect to {self._host} for {what}"
                    ) from None
                attempt += 1
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
            except TimeoutError:
                raise ProviderUnavailable(
                    SERVICE, f"no answer from {self._host} within {self.timeout_seconds:g}s"
                ) from None
            except (UnauthorizedException, ForbiddenException) as e:
                raise ProviderUnavailable(
                    SERVICE, f"{self._host} refused our credentials (HTTP {e.status})"
                ) from None
            except (RateLimitExceededError, ServiceException) as e:
                raise ProviderUnavailable(
                    SERVICE, f"{self._host} failed {what} (HTTP {e.status})"
                ) from None
            except AuthenticationError:
                # the token issuer refused the client credentials, or answered nonsense
                raise ProviderUnavailable(
                    SERVICE, f"the token issuer refused our client credentials for {what}"
                ) from None
            except ApiException as e:
                if e.status and 400 <= e.status < 500:
                    error = _fga_error(e)
                    if error is not None:
                        raise error from None
                    raise ProviderUnavailable(
                        SERVICE, f"{self._host} refused {what} (HTTP {e.status}) without saying why"
                    ) from None
                raise ProviderUnavailable(
                    SERVICE, f"{self._host} failed {what} (HTTP {e.status or 'no status'})"
                ) from None
            except FgaValidationException as e:
                raise FGAError(ErrorCode.validation_error, str(e)) from None
            except ApiValueError as e:
                raise FGAError(
                    ErrorCode.validation_error, f"invalid OpenFGA request: {e}"
                ) from None
            except aiohttp.ClientError as e:
                raise ProviderUnavailable(
                    SERVICE, f"connection to {self._host} failed ({type(e).__name__})"
                ) from None
            except (ValueError, KeyError, TypeError, AttributeError, json.JSONDecodeError):
                # the SDK could not read the answer: not OpenFGA's JSON
                raise ProviderUnavailable(
                    SERVICE, f"{self._host} answered {what} with something that is not OpenFGA's"
                ) from None

    # FGAClient ---------------------------------------------------------------------------------

    async def check(
        self,
        user: str,
        relation: str,
        object: str,
        *,
        contextual_tuples: Sequence[TupleKey] = (),
        context: dict[str, Any] | None = None,
    ) -> bool:
        body = self._query_body(
            tuple_key={"user": user, "relation": relation, "object": object},
            contextual_tuples=contextual_tuples,
            context=context,
        )
        answer = await self._post_json("a check", "Check", "check", body)
        return self._decision(answer, "a check")

    async def batch_check(self, checks: Sequence[CheckRequest]) -> list[CheckResult]:
        """Each question answered; requests of at most `batch_size` checks, sent concurrently."""
        if not checks:
            return []
        ids = [uuid.uuid4().hex[:32] for _ in checks]
        items = []
        for c, cid in zip(checks, ids, strict=True):
            item: dict[str, Any] = {
                "tuple_key": {"user": c.user, "relation": c.relation, "object": c.object},
                "correlation_id": cid,
            }
            if c.contextual_tuples:
                item["contextual_tuples"] = {"tuple_keys": _tuple_dicts(c.contextual_tuples)}
            if c.context is not None:
                item["context"] = c.context
            items.append(item)
        chunks = [items[i : i + self.batch_size] for i in range(0, len(items), self.batch_size)]
        gate = asyncio.Semaphore(MAX_PARALLEL_REQUESTS)

        async def send(chunk: list[dict[str, Any]]) -> dict[str, Any]:
            async with gate:
                return await self._post_json(
                    "a batch check", "BatchCheck", "batch-check", self._query_body(checks=chunk)
                )

        answers = await asyncio.gather(*(send(chunk) for chunk in chunks))
        by_id: dict[str, CheckResult] = {}
        for answer in answers:
            result = answer.get("result")
            if not isinstance(result, dict):
                raise self._nonsense("a batch check", "no result map")
            for cid, single in result.items():
                if not isinstance(single, dict):
                    raise self._nonsense("a batch check", "a result that is not an object")
                error = single.get("error")
                if error is not None:
                    if not isinstance(error, dict):
                        raise self._nonsense("a batch check", "an error that is not an object")
                    message = error.get("message") or "the check failed"
                    by_id[str(cid)] = CheckResult(allowed=False, error=str(message))
                else:
                    by_id[str(cid)] = CheckResult(allowed=self._decision(single, "a batch check"))
        # a question the server did not answer is unknown, which means no
        return [by_id.get(cid, CheckResult(allowed=False, error="no answer")) for cid in ids]

    async def list_objects(
        self,
        user: str,
        relation: str,
        type: str,
        *,
        contextual_tuples: Sequence[TupleKey] = (),
        context: dict[str, Any] | None = None,
    ) -> list[str]:
        body = self._query_body(
            user=user,
            relation=relation,
            type=type,
            contextual_tuples=contextual_tuples,
            context=context,
        )
        answer = await self._post_json("a list-objects", "ListObjects", "list-objects", body)
        objects = answer.get("objects")
        if not isinstance(objects, list) or not all(isinstance(o, str) for o in objects):
            raise self._nonsense("a list-objects", "no list of object names")
        return list(objects)

    # The three questions whose answers decide access are sent through the SDK's raw request
    # (auth, retries and errors as for every call) and their JSON is validated here: the SDK's
    # models turn `"allowed": "false"` into True and a string `objects` into characters.

    def _query_body(
        self,
        *,
        contextual_tuples: Sequence[TupleKey] = (),
        context: dict[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = dict(fields)
        if contextual_tuples:
            body["contextual_tuples"] = {"tuple_keys": _tuple_dicts(contextual_tuples)}
        if context is not None:
            body["context"] = context
        if self.model_id:
            body["authorization_model_id"] = self.model_id
        if self.consistency:
            body["consistency"] = self.consistency
        return body

    async def _post_json(
        self, what: str, operation: str, endpoint: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """POST `body` to `/stores/{store_id}/<endpoint>`; the answer if it is a JSON object."""
        # The API object, not the client's public `execute_api_request`: that one returns the
        # body unparsed only on success and crashes on an error body (openfga-sdk 0.10), while
        # a response type of `object` gives the JSON as it came and errors as for every call.
        api = self._sdk()._api
        answer = await self._call(
            what,
            lambda: api.execute_api_request(
                operation_name=operation,
                method="POST",
                path=f"/stores/{{store_id}}/{endpoint}",
                path_params={"store_id": self.store_id},
                body=body,
                options={"retry_params": self._retry},
                response_types_map={200: "object"},
            ),
        )
        if not isinstance(answer, dict):
            raise self._nonsense(what, "not a JSON object")
        return answer

    def _decision(self, answer: dict[str, Any], what: str) -> bool:
        """`allowed` as a JSON boolean; anything else (a string, a number, null, absent) fails."""
        allowed = answer.get("allowed")
        if allowed is True or allowed is False:
            return allowed
        raise self._nonsense(what, "no true/false decision")

    def _nonsense(self, what: str, fault: str) -> ProviderUnavailable:
        return ProviderUnavailable(
            SERVICE, f"{self._host} answered {what} with something that is not OpenFGA's ({fault})"
        )

    async def list_users(
        self,
        object: str,
        relation: str,
        user_filters: Sequence[str],
        *,
        contextual_tuples: Sequence[TupleKey] = (),
        context: dict[str, Any] | None = None,
    ) -> list[str]:
        object_type, _, object_id = object.partition(":")
        filters = []
        for flt in user_filters:
            filter_type, _, filter_relation = flt.partition("#")
            filters.append(UserTypeFilter(type=filter_type, relation=filter_relation or None))
        body = ClientListUsersRequest(
            object=FgaObject(type=object_type, id=object_id),
            relation=relation,
            user_filters=filters,
            contextual_tuples=_client_tuples(contextual_tuples),
            context=context,
        )
        response = await self._call(
            "a list-users", lambda: self._sdk().list_users(body, self._options())
        )
        return [_user_string(u) for u in getattr(response, "users", None) or []]

    async def read(
        self, user: str | None = None, relation: str | None = None, object: str | None = None
    ) -> list[TupleKey]:
        """Every matching tuple, all pages."""
        key = ReadRequestTupleKey(user=user, relation=relation, object=object)
        out: list[TupleKey] = []
        token: str | None = None
        while True:
            options = self._options(page_size=READ_PAGE_SIZE)
            if token:
                options["continuation_token"] = token
            response = await self._call(
                "a read", lambda options=options: self._sdk().read(key, options)
            )
            for t in getattr(response, "tuples", None) or []:
                k = t.key
                condition = getattr(k, "condition", None)
                out.append(
                    TupleKey(
                        user=k.user,
                        relation=k.relation,
                        object=k.object,
                        condition_name=condition.name if condition else None,
                        condition_context=(condition.context or None) if condition else None,
                    )
                )
            token = getattr(response, "continuation_token", None)
            if not token:
                return out

    async def write(
        self, writes: Sequence[TupleKey] = (), deletes: Sequence[TupleKey] = ()
    ) -> None:
        """Writes and deletes in one transaction (OpenFGA allows 100 tuples per request)."""
        body = ClientWriteRequest(
            writes=_client_tuples(writes) or None,
            deletes=[ClientTuple(t.user, t.relation, t.object) for t in deletes] or None,
        )
        await self._call("a write", lambda: self._sdk().write(body, self._options()))

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    # administration (the CLI and tests use these; not part of FGAClient) ---------------------

    async def write_model(self, model: dict[str, Any]) -> str:
        """Store a new model version; returns its id."""
        from openfga_sdk.models import WriteAuthorizationModelRequest

        body = WriteAuthorizationModelRequest(
            schema_version=model.get("schema_version", "1.1"),
            type_definitions=model.get("type_definitions") or [],
            conditions=model.get("conditions") or None,
        )
        response = await self._call(
            "a model write", lambda: self._sdk().write_authorization_model(body)
        )
        return str(response.authorization_model_id)


def _credentials(
    api_token: str | None,
    client_id: str | None,
    client_secret: str | None,
    issuer: str | None,
    audience: str | None,
) -> Credentials | None:
    if client_id:
        return Credentials(
            method="client_credentials",
            configuration=CredentialConfiguration(
                client_id=client_id,
                client_secret=client_secret,
                api_issuer=issuer,
                api_audience=audience,
            ),
        )
    if api_token:
        return Credentials(
            method="api_token", configuration=CredentialConfiguration(api_token=api_token)
        )
    return None


def _client_tuples(tuples: Sequence[TupleKey]) -> list[ClientTuple] | None:
    if not tuples:
        return None
    out = []
    for t in tuples:
        condition = None
        if t.condition_name:
            condition = RelationshipCondition(
                name=t.condition_name, context=t.condition_context or None
            )
        out.append(
            ClientTuple(user=t.user, relation=t.relation, object=t.object, condition=condition)
        )
    return out


def _tuple_dicts(tuples: Sequence[TupleKey]) -> list[dict[str, Any]]:
    """Tuples as OpenFGA's JSON `TupleKey`s (with their condition, if any)."""
    out = []
    for t in tuples:
        key: dict[str, Any] = {"user": t.user, "relation": t.relation, "object": t.object}
        if t.condition_name:
            key["condition"] = {"name": t.condition_name}
            if t.condition_context:
                key["condition"]["context"] = t.condition_context
        out.append(key)
    return out


def _user_string(user: Any) -> str:
    """OpenFGA's `User` (object, userset or wildcard) as `type:id`, `type:id#rel`, `type:*`."""
    if getattr(user, "object", None) is not None:
        return f"{user.object.type}:{user.object.id}"
    if getattr(user, "userset", None) is not None:
        u = user.userset
        return f"{u.type}:{u.id}#{u.relation}"
    if getattr(user, "wildcard", None) is not None:
        return f"{user.wildcard.type}:*"
    raise ProviderUnavailable(SERVICE, "a list-users answer held a user of no known kind")


def _fga_error(e: ApiException) -> FGAError | None:
    """OpenFGA's error body (`code`, `message`) as an `FGAError` with the same code.

    None when the answer is not OpenFGA's error body (a proxy's page, a token issuer's error):
    then nothing says the request was wrong, and the caller reports the service instead.
    """
    code_name = e.code
    message = e.error_message
    if not code_name and e.body:
        try:
            parsed = json.loads(e.body if isinstance(e.body, str) else e.body.decode())
            code_name, message = parsed.get("code"), parsed.get("message") or message
        except (ValueError, AttributeError, UnicodeDecodeError):
            pass
    if not code_name:
        return None
    code = ErrorCode.__members__.get(str(code_name))
    if code is None:
        code = ErrorCode.store_id_not_found if e.status == 404 else ErrorCode.validation_error
    return FGAError(code, f"OpenFGA rejected the request: {message}")
