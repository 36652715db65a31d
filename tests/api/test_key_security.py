"""Keys with several scopes, rotation, client allowlists, rate limits, use counts and TLS,
through a real server on 127.0.0.1 and real PostgreSQL."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.api.auth import FAILURE_WINDOW_SECONDS, FAILURES_TO_WARN, AnomalyWatch, client_address
from hub.api.context import HubContext
from hub.api.key_cache import RateLimiter, rate_from_env
from hub.api.server import serving, tls_context
from hub.domain.keys import ApiKey, Rate, Scope, key_digest, key_prefix, new_key, parse_network
from hub.errors import ConfigError, FatalError, InvalidInput
from tests.api import deliveries
from tests.api.conftest import bearer, event_body


async def create_key(
    hub: HubContext,
    *scopes: str,
    tenant: str = "default",
    allow_ips: tuple[str, ...] = (),
    rate: str | None = None,
) -> tuple[str, ApiKey]:
    """A key stored the way ``keys create`` stores it, and its record."""
    key = new_key()
    stored = await hub.keys.create(
        digest=key_digest(key),
        prefix=key_prefix(key),
        tenant=tenant,
        scopes=[Scope.parse(s) for s in scopes],
        allow_ips=[parse_network(n) for n in allow_ips],
        rate=Rate.parse(rate) if rate else None,
    )
    return key, stored


async def read_status(http: aiohttp.ClientSession, api: str, key: str) -> int:
    async with http.get(f"{api}/v1/events", headers=bearer(key)) as r:
        return r.status


async def append_status(http: aiohttp.ClientSession, api: str, key: str, source: str) -> int:
    body = {"events": [event_body(f"e-{uuid.uuid4()}", source=source)]}
    async with http.post(f"{api}/v1/events", json=body, headers=bearer(key)) as r:
        return r.status


async def operate_status(http: aiohttp.ClientSession, api: str, key: str) -> int:
    async with http.get(f"{api}/v1/projections", headers=bearer(key)) as r:
        return r.status


# --- several scopes -------------------------------------------------------------------------


async def test_a_two_scope_key_can_do_both_and_nothing_else(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key, stored = await create_key(hub, "read", "ingest:stripe:acct_1")
    assert [str(s) for s in stored.scopes] == ["read", "ingest:stripe:acct_1"]
    assert await read_status(http, api, key) == 200
    assert await append_status(http, api, key, "stripe:acct_1") == 200
    assert await append_status(http, api, key, "shopify:x") == 403  # not its source
    assert await operate_status(http, api, key) == 403  # not its access
    assert await hub.store.head() == 1


async def test_a_read_and_operate_key_keeps_both(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    """The issue's case: ``--scope read --scope operate`` used to drop ``read``."""
    key, _ = await create_key(hub, "read", "operate")
    assert await read_status(http, api, key) == 200
    assert await operate_status(http, api, key) == 200
    assert await append_status(http, api, key, "stripe:acct_1") == 403


async def test_duplicate_scopes_are_stored_once(hub: HubContext) -> None:
    _, stored = await create_key(hub, "read", "read", "ingest:*")
    assert [str(s) for s in stored.scopes] == ["read", "ingest:*"]


# --- rotation -------------------------------------------------------------------------------


async def test_rotation_keeps_the_old_key_for_the_overlap_then_refuses_it(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    old_key, old = await create_key(hub, "read", "operate", allow_ips=("127.0.0.0/8",))
    new_key_text = new_key()
    retired, new = await hub.keys.rotate(
        old.prefix,
        digest=key_digest(new_key_text),
        prefix=key_prefix(new_key_text),
        overlap=timedelta(seconds=2),
    )
    assert retired.replaced_by == new.id
    assert new.scopes == old.scopes
    assert new.allow_ips == old.allow_ips
    assert await read_status(http, api, new_key_text) == 200
    assert await operate_status(http, api, new_key_text) == 200
    assert await read_status(http, api, old_key) == 200, "valid during the overlap"
    deadline = time.monotonic() + 15
    while (status := await read_status(http, api, old_key)) == 200:
        assert time.monotonic() < deadline, "the old key was never refused"
        await asyncio.sleep(0.1)
    assert status == 401
    async with http.get(f"{api}/v1/events", headers=bearer(old_key)) as r:
        assert "rotated" in (await r.json(content_type=None))["detail"]
    assert await read_status(http, api, new_key_text) == 200
    with pytest.raises(InvalidInput, match="already rotated"):
        await hub.keys.rotate(
            str(old.id), digest=key_digest(new_key()), prefix="lh_x", overlap=timedelta(0)
        )


async def test_rotation_never_extends_the_old_keys_expiry(hub: HubContext) -> None:
    key = new_key()
    soon = datetime.now(UTC) + timedelta(minutes=5)
    old = await hub.keys.create(
        digest=key_digest(key), prefix=key_prefix(key), tenant="default",
        scope=Scope.parse("read"), expires_at=soon,
    )  # fmt: skip
    other = new_key()
    retired, new = await hub.keys.rotate(
        str(old.id), digest=key_digest(other), prefix=key_prefix(other), overlap=timedelta(days=1)
    )
    assert retired.expires_at == new.expires_at == old.expires_at


async def test_a_revoked_key_cannot_be_rotated(hub: HubContext) -> None:
    _, old = await create_key(hub, "read")
    await hub.keys.revoke(str(old.id))
    with pytest.raises(InvalidInput, match="revoked"):
        await hub.keys.rotate(
            str(old.id), digest=key_digest(new_key()), prefix="lh_x", overlap=timedelta(0)
        )


# --- client allowlists ----------------------------------------------------------------------


async def status_from(api: str, key: str, source_ip: str, **headers: str) -> tuple[int, str]:
    connector = aiohttp.TCPConnector(local_addr=(source_ip, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(f"{api}/v1/events", headers={**bearer(key), **headers}) as r,
    ):
        return r.status, (await r.text()) if r.status != 200 else ""


async def test_an_allowlisted_key_is_refused_from_another_address(
    api: str, hub: HubContext
) -> None:
    key, _ = await create_key(hub, "read", allow_ips=("127.0.0.1/32",))
    assert (await status_from(api, key, "127.0.0.1"))[0] == 200
    status, body = await status_from(api, key, "127.0.0.2")
    assert status == 403
    assert "127.0.0.2" in body
    assert "127.0.0.1/32" in body
    # without a trusted proxy, X-Forwarded-For is not believed
    status, _ = await status_from(api, key, "127.0.0.2", **{"X-Forwarded-For": "127.0.0.1"})
    assert status == 403
    anywhere, _ = await create_key(hub, "read")
    assert (await status_from(api, anywhere, "127.0.0.2"))[0] == 200


async def test_a_refused_address_is_a_documented_problem(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key, _ = await create_key(hub, "read", allow_ips=("10.0.0.0/8", "2001:db8::/32"))
    async with http.get(f"{api}/v1/events", headers=bearer(key)) as r:
        assert r.status == 403
        assert r.content_type == "application/problem+json"
        problem = await r.json(content_type=None)
    assert "127.0.0.1" in problem["detail"]
    assert key not in problem["detail"]


@pytest.fixture
async def proxied_api(hub: HubContext) -> AsyncIterator[str]:
    """The hub behind a trusted proxy on 127.0.0.2 (the test plays the proxy)."""
    async with serving(hub, "127.0.0.1", 0, trusted_proxies=[parse_network("127.0.0.2/32")]) as url:
        yield url


async def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(
    proxied_api: str, hub: HubContext
) -> None:
    key, _ = await create_key(hub, "read", allow_ips=("203.0.113.0/24",))
    through_proxy = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
    assert (await status_from(proxied_api, key, "127.0.0.2", **through_proxy))[0] == 200
    # the right-most untrusted entry is the client, whatever a client put before it
    status, body = await status_from(
        proxied_api, key, "127.0.0.2", **{"X-Forwarded-For": "203.0.113.7, 198.51.100.9"}
    )
    assert status == 403
    assert "198.51.100.9" in body
    # the same header from an untrusted peer is ignored: the peer is the client
    status, body = await status_from(proxied_api, key, "127.0.0.1", **through_proxy)
    assert status == 403
    assert "127.0.0.1" in body


def test_client_address_rules() -> None:
    trusted = [parse_network("10.0.0.0/8")]
    ip = ipaddress.ip_address
    assert client_address("192.0.2.1", ["198.51.100.1"], trusted) == (ip("192.0.2.1"), "192.0.2.1")
    assert client_address("10.1.1.1", ["198.51.100.1, 10.2.2.2"], trusted)[0] == ip("198.51.100.1")
    assert client_address("10.1.1.1", ["198.51.100.1", "192.0.2.5"], trusted)[0] == ip(
        "192.0.2.5"
    ), "several headers read as one list"
    assert client_address("10.1.1.1", [], trusted)[0] == ip("10.1.1.1")
    assert client_address("10.1.1.1", ["10.3.3.3"], trusted)[0] == ip("10.3.3.3")
    assert client_address("10.1.1.1", ["junk"], trusted) == (None, "junk")
    assert client_address("10.1.1.1", ["[2001:db8::1]:443"], trusted)[0] == ip("2001:db8::1")
    assert client_address("::ffff:10.1.1.1", ["192.0.2.9"], trusted)[0] == ip("192.0.2.9")


# --- rate limits ----------------------------------------------------------------------------


async def test_over_its_rate_a_key_gets_429_with_retry_after(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key, _ = await create_key(hub, "read", rate="2/m")
    assert await read_status(http, api, key) == 200
    assert await read_status(http, api, key) == 200
    async with http.get(f"{api}/v1/events", headers=bearer(key)) as r:
        assert r.status == 429
        assert r.content_type == "application/problem+json"
        retry_after = int(r.headers["Retry-After"])
        problem = await r.json(content_type=None)
    assert 1 <= retry_after <= 30  # a token every 30 s
    assert "2/m" in problem["detail"]
    other, _ = await create_key(hub, "read", rate="2/m")
    assert await read_status(http, api, other) == 200, "each key has a bucket of its own"


@pytest.fixture
async def limited_api(hub: HubContext) -> AsyncIterator[str]:
    async with serving(hub, "127.0.0.1", 0, rate_limit=Rate.parse("1/h")) as url:
        yield url


async def test_the_default_rate_applies_to_keys_without_their_own(
    limited_api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    plain, _ = await create_key(hub, "read")
    assert await read_status(http, limited_api, plain) == 200
    assert await read_status(http, limited_api, plain) == 429
    own, _ = await create_key(hub, "read", rate="100/s")
    for _ in range(5):
        assert await read_status(http, limited_api, own) == 200


def test_token_bucket_refills_at_its_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(Rate.parse("10/s"), clock=lambda: now[0])
    key = ApiKey(
        id=uuid.uuid4(), tenant="t", scopes=(Scope.parse("read"),), prefix="lh_x",
        created_at=datetime.now(UTC), expires_at=None, revoked_at=None,
    )  # fmt: skip
    assert [limiter.take(key) for _ in range(10)] == [None] * 10
    wait = limiter.take(key)
    assert wait == pytest.approx(0.1)
    now[0] += 0.1
    assert limiter.take(key) is None
    assert limiter.take(key) == pytest.approx(0.1)
    now[0] += 60
    assert [limiter.take(key) for _ in range(10)] == [None] * 10, "never more than the bucket"
    assert limiter.take(key) is not None


def test_rate_limit_from_the_environment() -> None:
    assert rate_from_env({}) is None
    assert rate_from_env({"LEDGERHUB_RATE_LIMIT": "100/s"}) == Rate(100, 1)
    with pytest.raises(ConfigError, match="LEDGERHUB_RATE_LIMIT"):
        rate_from_env({"LEDGERHUB_RATE_LIMIT": "100 per second"})


# --- use counts -----------------------------------------------------------------------------


async def test_uses_are_counted_in_memory_and_written_in_one_batch(
    api: str, hub: HubContext, http: aiohttp.ClientSession
) -> None:
    key, stored = await create_key(hub, "read")
    for _ in range(3):
        assert await read_status(http, api, key) == 200
    assert await append_status(http, api, key, "stripe:acct_1") == 403  # a use all the same
    before = {k.id: k for k in await hub.keys.list()}[stored.id]
    assert before.use_count == 0, "no write per request"
    assert before.last_used_at is None
    assert await hub.keys.flush_usage() == 1
    after = {k.id: k for k in await hub.keys.list()}[stored.id]
    assert after.use_count == 4
    assert after.last_used_at is not None
    assert abs(after.last_used_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert await hub.keys.flush_usage() == 0


# --- TLS ------------------------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, generated here."""
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ledgerhub test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_serves_keys_and_webhooks_and_no_plain_http(
    hub: HubContext, tmp_path: Path
) -> None:
    cert, key_file = self_signed(tmp_path)
    tls = tls_context(cert, key_file)
    assert tls.minimum_version == ssl.TLSVersion.TLSv1_2
    trusting = ssl.create_default_context(cafile=str(cert))
    key, _ = await create_key(hub, "read")
    async with serving(hub, "127.0.0.1", 0, tls=tls) as url:
        assert url.startswith("https://127.0.0.1:")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting)) as http:
            async with http.get(f"{url}/v1/events", headers=bearer(key)) as r:
                assert r.status == 200
            delivery = deliveries.stripe(evt="evt_tls_1")
            async with http.post(
                f"{url}/v1/webhooks/stripe/acct_1", data=delivery.body, headers=delivery.headers
            ) as r:
                assert r.status == 200, await r.text()
        assert await hub.store.head() == 1
        port = int(url.rsplit(":", 1)[1])
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trusting)
        assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        writer.close()
        await writer.wait_closed()
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):
                async with plain.get(url.replace("https://", "http://") + "/healthz") as r:
                    await r.read()


def test_an_unreadable_certificate_is_named(tmp_path: Path) -> None:
    cert, key_file = self_signed(tmp_path)
    with pytest.raises(FatalError, match="cannot read the TLS certificate"):
        tls_context(tmp_path / "missing.pem", key_file)
    with pytest.raises(FatalError, match="cannot use the TLS certificate"):
        tls_context(key_file, key_file)
    assert tls_context(cert, key_file) is not None


# --- anomalies (log lines until the operations alert channel exists) ------------------------


async def test_repeated_failures_from_one_address_are_one_warning_without_the_key(
    api: str, hub: HubContext, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hub.api.auth")
    guess = new_key()
    for _ in range(FAILURES_TO_WARN * 2):
        assert await read_status(http, api, guess) == 401
    warnings = [r.getMessage() for r in caplog.records if "anomaly" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert f"{FAILURES_TO_WARN} failed authentications from 127.0.0.1" in warnings[0]
    limited, stored = await create_key(hub, "read", rate="1/h", allow_ips=("127.0.0.0/8",))
    for _ in range(3):
        await read_status(http, api, limited)
    assert (await status_from(api, limited, "127.0.0.1"))[0] == 429
    fenced, _ = await create_key(hub, "read", allow_ips=("10.0.0.0/8",))
    assert await read_status(http, api, fenced) == 403
    messages = [r.getMessage() for r in caplog.records]
    assert sum(f"key {stored.prefix}… is over its rate limit" in m for m in messages) == 1
    assert sum("outside its allowlist" in m for m in messages) == 1
    for key in (guess, limited, fenced):
        assert all(key not in m and key[9:] not in m for m in messages), "a key was logged"


def test_failures_are_counted_per_window(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hub.api.auth")
    now = [0.0]
    watch = AnomalyWatch(clock=lambda: now[0])
    for _ in range(FAILURES_TO_WARN - 1):
        watch.auth_failed("192.0.2.1")
    now[0] += FAILURE_WINDOW_SECONDS  # the window passed: counting starts again
    for _ in range(FAILURES_TO_WARN - 1):
        watch.auth_failed("192.0.2.1")
        watch.auth_failed("192.0.2.2")
    assert not caplog.records
    watch.auth_failed("192.0.2.1")
    assert [r.getMessage() for r in caplog.records] == [
        f"anomaly: {FAILURES_TO_WARN} failed authentications from 192.0.2.1 within 60 s"
    ]
