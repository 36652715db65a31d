"""A local Xero-compatible server (aiohttp on 127.0.0.1) for the Xero target's tests.

It behaves like Xero where the target relies on it: OAuth2 refresh-token grant with rotation
(a used refresh token is dead), bearer tokens and ``xero-tenant-id`` checked, every request body
validated against the ``ManualJournals`` schema of ``../shared/reference/xero/`` (jsonschema),
journals that do not balance or name an unknown account refused with a 400
``ValidationException``, ``Idempotency-Key`` honoured (a repeated key answers the first
response), 5 concurrent and 60 calls a minute enforced with 429 + ``Retry-After``; and faults
injected on demand (the ``faults`` deque) or at random (``fault_rate`` of the write calls, kinds
drawn from ``fault_kinds`` by ``random``, seeded): ``500``, ``429``, ``drop`` (the write is
applied, then the connection is cut), ``timeout`` (the write is applied, then the server stalls
``stall`` seconds before answering), ``timeout_before`` (stalls without applying). ``injected``
counts the faults by kind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import uuid
from collections import deque
from collections.abc import AsyncIterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import yaml
from aiohttp import web

SPEC = (
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "xero" / "xero_accounting.yaml"
)


@cache
def _schema() -> dict[str, Any]:
    spec = yaml.load(SPEC.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return {"$ref": "#/components/schemas/ManualJournals", "components": spec["components"]}


def validate(body: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` fits the spec's ManualJournals."""
    jsonschema.validate(body, _schema())


class FakeXero:
    """State and faults of the fake; ``url`` once started."""

    fault_kinds: tuple[str, ...] = ("500", "429", "timeout", "drop")

    def __init__(
        self, accounts: set[str], refresh_token: str, tenant_id: str, *, seed: int = 0
    ) -> None:
        self.accounts = accounts
        self.refresh_token = refresh_token
        self.tenant_id = tenant_id
        self.access_tokens: set[str] = set()
        self.journals: dict[str, dict[str, Any]] = {}
        self.replies: dict[str, tuple[int, bytes]] = {}
        self.faults: deque[str] = deque()
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls: deque[float] = deque()
        self.refreshes = 0
        self.latency = 0.0
        self.writes = 0
        self.url = ""
        self.stall = 5.0
        self.fault_rate = 0.0
        self.random = random.Random(seed)
        self.injected: collections.Counter[str] = collections.Counter()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/connect/token", self._token)
        app.router.add_get("/api.xro/2.0/ManualJournals", self._list)
        app.router.add_put("/api.xro/2.0/ManualJournals", self._write)
        app.router.add_post("/api.xro/2.0/ManualJournals/{id}", self._write)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (
            form.get("grant_type") != "refresh_token"
            or form.get("refresh_token") != self.refresh_token
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        self.refreshes += 1
        self.refresh_token = uuid.uuid4().hex  # rotation: the old one is dead now
        access = uuid.uuid4().hex
        self.access_tokens = {access}
        return web.json_response(
            {"access_token": access, "refresh_token": self.refresh_token, "expires_in": 1800}
        )

    def _admit(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.access_tokens:
            return web.json_response({"Title": "Unauthorized"}, status=401)
        if request.headers.get("xero-tenant-id") != self.tenant_id:
            return web.json_response({"Title": "Forbidden"}, status=403)
        now = asyncio.get_running_loop().time()
        while self.calls and now - self.calls[0] >= 60:
            self.calls.popleft()
        if len(self.calls) >= 60 or self.in_flight >= 5:
            return web.Response(status=429, headers={"Retry-After": "1"})
        self.calls.append(now)
        return None

    async def _list(self, request: web.Request) -> web.Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        return _json({"ManualJournals": list(self.journals.values())})

    async def _write(self, request: web.Request) -> web.StreamResponse:
        refused = self._admit(request)
        if refused is not None:
            return refused
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)  # a real server takes a while
            return await self._apply(request)
        finally:
            self.in_flight -= 1

    async def _apply(self, request: web.Request) -> web.StreamResponse:
        fault = self._fault()
        if fault == "timeout_before":
            await asyncio.sleep(self.stall)
            return web.json_response({"Title": "Internal error"}, status=500)
        if fault == "500":
            return web.json_response({"Title": "Internal error"}, status=500)
        if fault == "429":
            return web.Response(status=429, headers={"Retry-After": "0.01"})
        key = request.headers.get("Idempotency-Key")
        if key and key in self.replies:
            status, body = self.replies[key]
            return web.Response(status=status, body=body, content_type="application/json")
        text = await request.text()
        try:
            validate(orjson.loads(text))
        except orjson.JSONDecodeError:
            return _invalid("the body is not JSON")
        except jsonschema.ValidationError as exc:
            return _invalid(f"the body does not match the spec: {exc.message}")
        data = json.loads(text, parse_float=Decimal)
        status, reply = self._store(data["ManualJournals"][0], request.match_info.get("id"))
        body = orjson.dumps(reply, default=str)
        if key:
            self.replies[key] = (status, body)
        if fault == "drop" and request.transport is not None:
            request.transport.close()  # applied, but the caller never hears of it
            raise asyncio.CancelledError
        if fault == "timeout":
            await asyncio.sleep(self.stall)  # applied; a caller with a shorter timeout gives up
        return web.Response(status=status, body=body, content_type="application/json")

    def _fault(self) -> str | None:
        if self.faults:
            fault: str | None = self.faults.popleft()
        elif self.fault_rate > 0 and self.random.random() < self.fault_rate:
            fault = self.random.choice(self.fault_kinds)
        else:
            fault = None
        if fault is not None:
            self.injected[fault] += 1
        return fault

    def _store(self, journal: dict[str, Any], target: str | None) -> tuple[int, Any]:
        if target is not None and target not in self.journals:
            return 404, {"Title": "Not found"}
        if journal.get("Status") == "VOIDED":
            assert target is not None
            self.journals[target]["Status"] = "VOIDED"
            return 200, {"ManualJournals": [self.journals[target]]}
        lines = journal.get("JournalLines", [])
        if sum(Decimal(str(line["LineAmount"])) for line in lines) != 0:
            return _refusal("The total debits must equal the total credits")
        unknown = [
            line["AccountCode"] for line in lines if line["AccountCode"] not in self.accounts
        ]
        if unknown:
            return _refusal(f"Account code '{unknown[0]}' is not a valid code for this document.")
        self.writes += 1
        journal_id = target or str(uuid.uuid4())
        self.journals[journal_id] = {**journal, "ManualJournalID": journal_id}
        return 200, {"ManualJournals": [self.journals[journal_id]]}


def _json(value: Any) -> web.Response:
    return web.Response(body=orjson.dumps(value, default=str), content_type="application/json")


def _refusal(message: str) -> tuple[int, Any]:
    return 400, {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{"ValidationErrors": [{"Message": message}]}],
    }


def _invalid(message: str) -> web.Response:
    status, body = _refusal(message)
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


@contextlib.asynccontextmanager
async def serve(fake: FakeXero) -> AsyncIterator[FakeXero]:
    """Run ``fake`` on a free port of 127.0.0.1 for the generator's life."""
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()
