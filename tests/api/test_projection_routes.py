"""A projection brings its own routes: the API mounts those of every installed projection,
documents them, and holds them to the same rules as its own (a key, one handler per path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import aiohttp
import pytest
from aiohttp import web
from pydantic import BaseModel

from hub.api.app import CORE_ROUTES, api_routes, build_app
from hub.api.context import HubContext
from hub.api.server import serving
from hub.domain.events import RecordedEvent
from hub.errors import ConfigError
from hub.spi.http import (
    Access,
    ApiRoute,
    Auth,
    json_response,
    read_tenant,
    requires,
    validate,
)
from hub.spi.projection import Context, Projection
from tests.api.conftest import bearer, make_key

HERE = "tests.api.test_projection_routes"


class HelloQuery(BaseModel):
    tenant: str | None = None


class HelloOut(BaseModel):
    tenant: str
    greeting: str


async def hello(request: web.Request) -> web.Response:
    """Greets the key's tenant."""
    tenant = read_tenant(request, validate(HelloQuery, dict(request.query)).tenant)
    return json_response(HelloOut(tenant=tenant, greeting="hello").model_dump())


class Greeter(Projection):
    """Nothing to store; one read route."""

    name: ClassVar[str] = "greeter"

    async def handle(self, events: Sequence[RecordedEvent], ctx: Context) -> None:
        return None

    @classmethod
    def routes(cls) -> Sequence[ApiRoute]:
        return (
            ApiRoute(
                "GET", "/v1/greeter/hello", hello, "Say hello", auth=requires(Access.READ),
                query=HelloQuery, response=HelloOut,
            ),
        )  # fmt: skip


class OpenDoor(Greeter):
    """A route that would need no key."""

    name: ClassVar[str] = "open_door"

    @classmethod
    def routes(cls) -> Sequence[ApiRoute]:
        return (ApiRoute("GET", "/v1/open-door", hello, "Open", auth=Auth("public")),)


class Squatter(Greeter):
    """A route on a path the hub serves itself."""

    name: ClassVar[str] = "squatter"

    @classmethod
    def routes(cls) -> Sequence[ApiRoute]:
        return (ApiRoute("GET", "/v1/projections", hello, "Mine", auth=requires(Access.READ)),)


def test_the_core_knows_no_projection_route_and_the_api_mounts_the_installed_ones() -> None:
    core = {route.path for route in CORE_ROUTES}
    assert not any(path.startswith(("/v1/ledger", "/v1/reconciliation")) for path in core)
    mounted = {(route.method, route.path) for route in api_routes()}
    assert {
        ("GET", "/v1/ledger/trial-balance"),
        ("GET", "/v1/ledger/accounts/{code}/entries"),
        ("GET", "/v1/reconciliation/payouts"),
        ("GET", "/v1/reconciliation/exceptions"),
        ("POST", "/v1/reconciliation/resolutions"),
    } <= mounted


async def test_an_installed_projection_s_routes_are_served_documented_and_need_a_key(
    hub: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGERHUB_PROJECTIONS", f"{HERE}:Greeter")
    read = bearer(await make_key(hub, "read", tenant="t2"))
    async with serving(hub, "127.0.0.1", 0) as api, aiohttp.ClientSession() as http:
        async with http.get(f"{api}/v1/greeter/hello") as response:
            anonymous = (response.status, response.content_type)
        async with http.get(f"{api}/v1/greeter/hello", headers=read) as response:
            greeted = (response.status, await response.json())
        async with http.get(f"{api}/openapi.json", headers=read) as response:
            spec = await response.json()
    assert anonymous == (401, "application/problem+json")
    assert greeted == (200, {"tenant": "t2", "greeting": "hello"})
    operation = spec["paths"]["/v1/greeter/hello"]["get"]
    assert operation["security"] == [{"bearerKey": []}]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/HelloOut"
    )
    assert "/v1/reconciliation/payouts" in spec["paths"]


@pytest.mark.parametrize(
    ("projection", "message"),
    [
        ("OpenDoor", r"projection 'open_door': GET /v1/open-door must need a key"),
        ("Squatter", r"GET /v1/projections is declared twice"),
    ],
)
def test_a_projection_route_without_a_key_or_on_a_taken_path_is_refused(
    hub: HubContext, monkeypatch: pytest.MonkeyPatch, projection: str, message: str
) -> None:
    monkeypatch.setenv("LEDGERHUB_PROJECTIONS", f"{HERE}:{projection}")
    with pytest.raises(ConfigError, match=message):
        build_app(hub)
