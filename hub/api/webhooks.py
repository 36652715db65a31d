"""``POST /v1/webhooks/{connector}/{name}``: a provider's signed delivery into the log.

The route is the hub's; the scheme is the connector's (``Connector.verifier``). The body bytes
are stored as received in each event's ``raw`` and the signature headers in ``meta["webhook"]``,
so ``ledgerhub verify --signatures`` can re-check the delivery long after.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from hub.api.context import REQUEST_ID, context
from hub.api.events import json_response, results_body
from hub.api.models import AppendResultsOut
from hub.api.routing import SIGNATURE, ApiRoute
from hub.config import ConnectionConfig
from hub.domain.events import NewEvent
from hub.errors import NotFound
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
    """A delivered event as the log records it."""
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
    found = verifier.events(delivery)
    meta = {
        "webhook": delivery_meta(delivery, verifier, plugin),
        "request_id": request[REQUEST_ID],
    }
    results = await hub.store.append([new_event(connection, f, delivery, meta) for f in found])
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
