"""``POST /v1/webhooks/{connector}/{name}``: a provider's signed delivery into the log.

The route is the hub's; the scheme is the connector's (``Connector.verifier``). The body bytes
are stored as received in each event's ``raw`` and the signature headers in ``meta["webhook"]``,
so ``ledgerhub verify --signatures`` can re-check the delivery long after.

A correctly signed delivery can still carry what the log cannot hold (a NUL, an id or a type
longer than the log keeps, a time outside years 1-9999 in UTC, an integer beyond 64 bits): it is
refused with a 422 problem naming the field, and nothing of it is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from hub.api.bodies import describe, json_problem_items, problem_items
from hub.api.context import REQUEST_ID, context
from hub.api.events import json_response, results_body
from hub.api.models import AppendResultsOut
from hub.api.routing import SIGNATURE, ApiRoute
from hub.config import ConnectionConfig
from hub.domain.events import NewEvent, inexact_numbers
from hub.errors import InvalidInput, NotFound
from hub.spi.connector import Connector
from hub.spi.registry import connector as installed_connector
from hub.spi.verifier import DeliveredEvent, WebhookDelivery, WebhookVerifier


def webhook_target(
    connections: list[ConnectionConfig], connector: str, name: str
) -> tuple[ConnectionConfig, type[Connector], WebhookVerifier, bytes]:
    """The connection, its connector, verifier and secret; ``NotFound`` naming what is missing."""
    connection_id = f"{connector}:{name}"
    connection = next((c for c in connections if c.id == connection_id), None)
    plugin = installed_connector(connector)
    if connection is None or plugin is None:
        raise NotFound(f"no connection {connection_id!r} is configured")
    secret = connection.secret()
    if plugin.verifier is None or secret is None:
        raise NotFound(f"connection {connection_id!r} does not take webhooks (no webhook_secret)")
    return connection, plugin, plugin.verifier, secret


def delivery_meta(
    delivery: WebhookDelivery, verifier: WebhookVerifier, plugin: type[Connector]
) -> dict[str, Any]:
    """What is kept in ``meta["webhook"]`` to re-verify the delivery later."""
    return {
        "url": delivery.url,
        "headers": {
            name: value
            for name in verifier.signature_headers
            if (value := delivery.header(name)) is not None
        },
        "connector": plugin.name,
        "connector_version": plugin.version,
        "signature_verified": True,
    }


def new_event(
    connection: ConnectionConfig,
    found: DeliveredEvent,
    delivery: WebhookDelivery,
    meta: dict[str, Any],
) -> NewEvent:
    """A delivered event as the log records it; ``ValidationError`` if the log cannot hold it."""
    return NewEvent(
        tenant=connection.tenant,
        source=connection.id,
        external_id=found.external_id,
        type=found.type,
        occurred_at=found.occurred_at,
        data=found.data,
        stream=None if found.entity is None else f"{connection.id}/{found.entity}",
        meta={**found.meta, **meta},
        raw=delivery.body,
    )


def delivered_events(
    connection: ConnectionConfig,
    found: list[DeliveredEvent],
    delivery: WebhookDelivery,
    meta: dict[str, Any],
) -> list[NewEvent]:
    """The delivery's events as the log records them, or 422 naming each field (and the
    event's index in the delivery) that the log cannot hold: nothing of the delivery is stored."""
    events: list[NewEvent] = []
    items: list[dict[str, Any]] = []
    for index, event in enumerate(found):
        try:
            events.append(new_event(connection, event, delivery, meta))
        except ValidationError as exc:
            items += [{**item, "index": index} for item in problem_items(exc)]
    if items:
        raise InvalidInput(f"the delivery cannot be stored: {describe(items)}", errors=items)
    return events


def exact_numbers(delivery: WebhookDelivery) -> None:
    """422 naming each number in the body (by its JSON path) the log would not keep as sent."""
    inexact = inexact_numbers(delivery.body)
    if inexact:
        items = json_problem_items(inexact)
        raise InvalidInput(f"the delivery cannot be stored: {describe(items)}", errors=items)


async def receive_webhook(request: web.Request) -> web.Response:
    """Verify the provider's signature, then append the delivery's events (401 if it fails)."""
    hub = context(request)
    connection, plugin, verifier, secret = webhook_target(
        hub.config.connections, request.match_info["connector"], request.match_info["name"]
    )
    delivery = WebhookDelivery(
        url=connection.notification_url or str(request.url),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=await request.read(),
    )
    verifier.verify(delivery, secret, now=datetime.now(UTC))
    exact_numbers(delivery)
    found = verifier.events(delivery)
    meta = {
        "webhook": delivery_meta(delivery, verifier, plugin),
        "request_id": request[REQUEST_ID],
    }
    results = await hub.store.append(delivered_events(connection, found, delivery, meta))
    if verifier.empty_response:
        return web.Response(status=200)
    return json_response(results_body(results))


ROUTES = [
    ApiRoute(
        "POST",
        "/v1/webhooks/{connector}/{name}",
        receive_webhook,
        "Receive a provider's signed webhook for connection {connector}:{name}",
        auth=SIGNATURE,
        response=AppendResultsOut,
        errors=(400, 401, 404, 413, 422),
    ),
]
