"""A real hub on 127.0.0.1 (real socket, real PostgreSQL) and helpers to call it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.api.context import ApiLimits, HubContext
from hub.api.server import open_hub, serving
from hub.config import Config, load_config
from hub.domain.keys import Scope, key_digest, key_prefix, new_key

FIXTURES = Path(__file__).parent.parent / "fixtures"

SECRETS = {
    "stripe": b"whsec_test_8b1f0c6a",
    "shopify": b"shpss_test_5d2e",
    "woocommerce": b"wc_test_secret",
    "square": b"sq_signature_key_test",
    "xero": b"xero_webhook_key_test/abc==",
}
CONNECTIONS = {
    "stripe": "stripe:acct_1",
    "shopify": "shopify:acme-store",
    "woocommerce": "woocommerce:shop",
    "square": "square:seller",
    "xero": "xero:org",
}
SQUARE_URL = "https://hooks.example.com/v1/webhooks/square/seller"


def write_config(directory: Path, secrets: dict[str, bytes] = SECRETS) -> Path:
    """A config file with one connection per webhook connector, secrets in files beside it."""
    parts = ['[tenants.default]\ntimezone = "America/New_York"\n', "[tenants.t2]\n"]
    for connector, connection in CONNECTIONS.items():
        (directory / f"{connector}.secret").write_bytes(secrets[connector] + b"\n")
        extra = f'notification_url = "{SQUARE_URL}"\n' if connector == "square" else ""
        parts.append(
            f'[[connections]]\nid = "{connection}"\nconnector = "{connector}"\n'
            f'webhook_secret = "file:{connector}.secret"\n{extra}'
        )
    path = directory / "ledgerhub.toml"
    path.write_text("\n".join(parts))
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def hub_config(config_path: Path) -> Config:
    return load_config(config_path)


@pytest.fixture
def limits() -> ApiLimits:
    return ApiLimits()


@pytest.fixture
async def hub(dsn: str, hub_config: Config, limits: ApiLimits) -> AsyncIterator[HubContext]:
    async with open_hub(dsn, hub_config, limits) as context:
        yield context


@pytest.fixture
async def api(hub: HubContext) -> AsyncIterator[str]:
    """Base URL of the hub, listening on a free port of 127.0.0.1."""
    async with serving(hub, "127.0.0.1", 0) as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def make_key(
    hub: HubContext, scope: str, *, tenant: str = "default", expires_at: datetime | None = None
) -> str:
    """A key stored the way ``keys create`` stores it."""
    key = new_key()
    await hub.keys.create(
        digest=key_digest(key),
        prefix=key_prefix(key),
        tenant=tenant,
        scope=Scope.parse(scope),
        expires_at=expires_at,
    )
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def event_body(external_id: str, *, source: str = "stripe:acct_1", **fields: Any) -> dict[str, Any]:
    """One valid EventIn as JSON."""
    body: dict[str, Any] = {
        "source": source,
        "external_id": external_id,
        "type": "stripe.charge.succeeded",
        "occurred_at": datetime(2026, 11, 1, 12, tzinfo=UTC).isoformat(),
        "data": {"id": external_id, "amount": 1099, "currency": "usd"},
    }
    body.update(fields)
    return body
