"""The OpenAPI document is the truth of what the server does: every status and media type an
operation answers is one the served ``/openapi.json`` lists for it.

Deterministic, document-driven checks (schemathesis explores at random: ``test_schemathesis``):
for every operation of the served document, with each kind of key and none, requests that are
plain, that carry text PostgreSQL cannot store (NUL) in each parameter and in the body, numbers,
booleans and dates not written as documented, bodies that are not JSON, not ``application/json``,
too large, or that hold a key twice; on a database whose projections no worker has built yet
(their routes answer 404); and with the database away (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import pytest
from yarl import URL

from hub.api.app import api_routes
from hub.api.context import ApiLimits, HubContext
from hub.api.openapi import openapi_document
from hub.api.server import open_hub, serving
from hub.config import Config
from tests.api.conftest import bearer, config_path, hub_config, make_key

__all__ = ["config_path", "hub_config"]

LIMIT = 4096
"""The body limit of the server under test (bytes), so a 413 is cheap to provoke."""
KEYS: dict[str, tuple[str, str]] = {
    "ingest": ("ingest:*", "default"),
    "read": ("read", "default"),
    "operate": ("operate", "*"),
}
NUL = "a\x00b"
MISWRITTEN = {"integer": "1.0", "boolean": "yes", "date": "0.0"}
"""A value of each kind of query parameter that pydantic would take but the document refuses."""

Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture
def limits() -> ApiLimits:
    """No key cache, so every request looks its key up (in the database)."""
    return ApiLimits(max_body_bytes=LIMIT, key_cache_seconds=0)


@pytest.fixture
async def hub(dsn: str, hub_config: Config, limits: ApiLimits) -> AsyncIterator[HubContext]:
    async with open_hub(dsn, hub_config, limits) as context:
        yield context


@pytest.fixture
async def api(hub: HubContext) -> AsyncIterator[str]:
    async with serving(hub, "127.0.0.1", 0) as url:
        yield url


@pytest.fixture
async def keys(hub: HubContext) -> dict[str, dict[str, str]]:
    """Headers for each kind of key, and none."""
    found = {
        kind: bearer(await make_key(hub, scope, tenant=tenant))
        for kind, (scope, tenant) in KEYS.items()
    }
    return {**found, "none": {}}


@pytest.fixture
async def document(api: str, keys: dict[str, dict[str, str]]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{api}/openapi.json", headers=keys["read"]) as response,
    ):
        assert response.status == 200
        served: dict[str, Any] = await response.json()
    return served


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def _url(api: str, path: str, values: dict[str, str] | None = None) -> URL:
    values = values or {}
    filled = re.sub(r"{(\w+)}", lambda m: quote(values.get(m[1], "1"), safe=""), path)
    return URL(api + filled, encoded=True)


def _kind(schema: dict[str, Any]) -> str | None:
    if schema.get("type") == "string" and schema.get("format") == "date":
        return "date"
    return schema.get("type") if schema.get("type") in ("integer", "boolean") else None


class Calls:
    """Sends requests and checks each answer against what the document lists, collecting every
    disagreement (``problems``) rather than stopping at the first."""

    def __init__(self, http: aiohttp.ClientSession, api: str) -> None:
        self.http = http
        self.api = api
        self.answered: list[tuple[str, str, int]] = []
        self.problems: list[str] = []

    def expect(self, found: object, wanted: object, what: str) -> None:
        """Note a problem unless ``found == wanted``."""
        if found != wanted:
            self.problems.append(f"{what}: got {found!r}, expected {wanted!r}")

    async def call(
        self,
        operation: Operation,
        headers: dict[str, str],
        *,
        path: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        method, template, declared = operation
        send = dict(headers)
        if body is not None:
            send["Content-Type"] = content_type
        url = _url(self.api, template, path)
        if query:
            url = url.with_query(query)
        async with self.http.request(method, url, headers=send, data=body) as response:
            status, media = response.status, response.content_type
            text = await response.text()
        self.answered.append((method, template, status))
        answers = declared["responses"]
        listed = answers.get(str(status), {}).get("content", {})
        if str(status) not in answers:
            self.problems.append(
                f"{method} {url.path_qs[:120]} answered {status}, which its document does not "
                f"list ({sorted(answers)}): {text[:200]}"
            )
        elif (listed or text) and media not in {m.split(";")[0] for m in listed}:
            self.problems.append(
                f"{method} {template} answered {status} as {media}, documented as {list(listed)}"
            )
        return status, json.loads(text) if media.endswith("json") and text else text


def _right_keys(operation: Operation, keys: dict[str, dict[str, str]]) -> list[str]:
    """The kinds of key this operation serves (none when it takes no key)."""
    _, template, declared = operation
    if not declared["security"]:
        return ["none"]
    operate = (
        "/v1/projections", "/v1/jobs", "/v1/parked", "/v1/sync", "/v1/runs", "/metrics",
        "/v1/health/connections", "/v1/audit",
    )  # fmt: skip
    if template.startswith(operate):
        return ["operate"]
    if template in ("/v1/reconciliation/resolutions",) or (
        operation[0] == "POST" and template == "/v1/events"
    ):
        return ["ingest"]
    return list(KEYS) if template == "/openapi.json" else ["read"]


def _refused(status: int, answer: Any) -> tuple[int, str | None]:
    """The status and the field the first error names (None when there is none)."""
    if not isinstance(answer, dict) or not answer.get("errors"):
        return status, None
    return status, str(answer["errors"][0]["field"])


async def test_every_answer_to_every_kind_of_request_is_documented(
    api: str, document: dict[str, Any], keys: dict[str, dict[str, str]]
) -> None:
    async with aiohttp.ClientSession() as http:
        calls = Calls(http, api)
        for operation in operations(document):
            method, template, declared = operation
            right = _right_keys(operation, keys)
            parameters = declared["parameters"]
            has_body = "requestBody" in declared
            for kind, headers in keys.items():
                plain_body = b"{}" if has_body else None
                status, _ = await calls.call(operation, headers, body=plain_body)
                where = f"{method} {template} ({kind} key)"
                if kind not in right:
                    if declared["security"]:
                        calls.expect(status, 401 if kind == "none" else 403, where)
                    continue
                for parameter in parameters:
                    name, at = parameter["name"], parameter["in"]
                    if at == "header":
                        answer = await calls.call(
                            operation, {**headers, name: "k" * 300}, body=plain_body
                        )
                        calls.expect(_refused(*answer), (422, name), f"{where} header {name}")
                    elif at == "path":
                        answer = await calls.call(operation, headers, path={name: NUL})
                        calls.expect(_refused(*answer), (422, name), f"{where} NUL in {name}")
                    elif at == "query":
                        answer = await calls.call(operation, headers, query={name: NUL})
                        calls.expect(_refused(*answer), (422, name), f"{where} NUL in {name}")
                        wrong = MISWRITTEN.get(_kind(parameter["schema"]) or "")
                        if wrong is not None:
                            answer = await calls.call(operation, headers, query={name: wrong})
                            calls.expect(_refused(*answer), (422, name), f"{where} {name}={wrong}")
                if has_body and declared["security"]:
                    bad = {
                        400: (b'{"events": [', "application/json"),
                        415: (b"{}", "text/plain"),
                        413: (b'{"x": "' + b"y" * LIMIT + b'"}', "application/json"),
                        422: (b'{"reason": "a\\u0000b"}', "application/json"),
                    }
                    for expected, (body, content_type) in bad.items():
                        status, _ = await calls.call(
                            operation, headers, body=body, content_type=content_type
                        )
                        calls.expect(status, expected, f"{where} body {body[:20]!r}")
                    answer = await calls.call(
                        operation, headers, body=b'{"send": true, "send": false}'
                    )
                    calls.expect(_refused(*answer), (422, "send"), f"{where} a key given twice")
    assert not calls.problems, "\n".join(calls.problems)
    assert len({(m, t) for m, t, _ in calls.answered}) == len(list(operations(document)))
    assert not [a for a in calls.answered if a[2] >= 500]


async def test_a_projection_s_routes_answer_a_documented_404_until_it_is_built(
    api: str, document: dict[str, Any], keys: dict[str, dict[str, str]]
) -> None:
    reads = [
        operation
        for operation in operations(document)
        if operation[0] == "GET" and operation[1].startswith(("/v1/ledger", "/v1/reconciliation"))
    ]
    async with aiohttp.ClientSession() as http:
        calls = Calls(http, api)
        answers = [await calls.call(operation, keys["read"]) for operation in reads]
    assert not calls.problems, "\n".join(calls.problems)
    assert len(reads) >= 8
    assert all(status == 404 for status, _ in answers), answers
    assert all("not been built" in answer["detail"] for _, answer in answers)


def _target(dsn: str) -> tuple[str, str | int]:
    """Where the server of ``dsn`` listens: a Unix socket's path, or a TCP host and port."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    port = parts.port or int(query.get("port", ["5432"])[0])
    host = query.get("host", [parts.hostname or "localhost"])[0]
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}", 0
    return host, port


class Outage:
    """A TCP proxy to PostgreSQL that can be cut, as a network or a stopped server cuts it."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    @property
    def proxied_dsn(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        parts = urlsplit(self.dsn)
        user = parts.username or "postgres"
        secret = f":{parts.password}" if parts.password else ""
        return f"postgresql://{quote(user)}{secret}@127.0.0.1:{port}{parts.path}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = _target(self.dsn)
        if port == 0:
            upstream = await asyncio.open_unix_connection(host)
        else:
            upstream = await asyncio.open_connection(host, port)
        self.links |= {writer, upstream[1]}
        await asyncio.gather(self._pipe(reader, upstream[1]), self._pipe(upstream[0], writer))

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)

    async def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        assert self.server is not None
        self.server.close()
        for writer in self.links:
            writer.transport.abort()
        await self.server.wait_closed()


async def test_with_the_database_away_every_route_that_needs_it_answers_a_documented_503(
    dsn: str, hub_config: Config, limits: ApiLimits
) -> None:
    outage = Outage(dsn)
    await outage.start()
    document = openapi_document(api_routes())
    async with open_hub(outage.proxied_dsn, hub_config, limits) as hub:
        keys = {
            kind: bearer(await make_key(hub, scope, tenant=tenant))
            for kind, (scope, tenant) in KEYS.items()
        }
        async with serving(hub, "127.0.0.1", 0) as api, aiohttp.ClientSession() as http:
            await outage.cut()
            calls = Calls(http, api)
            answers = {}
            for operation in operations(document):
                method, template, declared = operation
                kind = _right_keys(operation, {**keys, "none": {}})[0]
                body = b"{}" if "requestBody" in declared else None
                status, _ = await calls.call(operation, keys.get(kind, {}), body=body)
                answers[f"{method} {template}"] = status
    assert not calls.problems, "\n".join(calls.problems)
    assert answers.pop("GET /healthz") == 200
    assert answers.pop("POST /v1/webhooks/{connector}/{name}") == 404  # no such connection
    assert set(answers.values()) == {503}, answers


def test_the_document_lists_what_each_kind_of_route_can_answer() -> None:
    document = openapi_document(api_routes())
    found = list(operations(document))
    assert len(found) >= 20
    for method, path, operation in found:
        statuses = set(operation["responses"])
        if operation["security"]:
            assert {"401", "403", "503"} <= statuses, (method, path)
        if operation["parameters"] or "requestBody" in operation:
            assert "422" in statuses, (method, path)
        if "$ref" in str(operation.get("requestBody")):
            assert {"400", "413", "415", "422"} <= statuses, (method, path)
        for parameter in operation["parameters"]:
            schema = json.dumps(parameter["schema"])
            assert '"null"' not in schema, (path, parameter)
            if parameter["schema"].get("type") == "string" and parameter["in"] != "header":
                assert {"pattern", "format", "enum"} & parameter["schema"].keys(), parameter
    queued = {
        "POST /v1/projections/{name}/replay", "POST /v1/projections/{name}/rebuild",
        "POST /v1/parked/{id}/retry", "POST /v1/reconciliation/resolutions",
    }  # fmt: skip
    for method, path, operation in found:
        success = "202" if f"{method} {path}" in queued else "200"
        assert success in operation["responses"], (method, path)
    paths = document["paths"]
    assert "404" in paths["/v1/ledger/trial-balance"]["get"]["responses"]
    assert "text/csv" in paths["/v1/reconciliation/payouts"]["get"]["responses"]["200"]["content"]
    rebuild = paths["/v1/projections/{name}/rebuild"]["post"]["requestBody"]
    assert rebuild["required"] is False
