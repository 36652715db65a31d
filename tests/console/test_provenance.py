"""The event page's provenance: a stored webhook delivery re-verified with the secret the hub
holds now (verified, not verifying once the secret changed, or not checkable without it), and
events of another tenant kept out of sight."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from hub.api.context import ApiLimits, HubContext
from hub.api.server import open_hub, serving
from hub.config import load_config
from hub.store import EventStore
from tests.console.client import Console, console_key, deliver_webhook
from tests.factories import event
from tests.ledger.scenarios import stripe_scenario


async def _signature_line(dsn: str, config: Path, position: int, key: str) -> tuple[int, str]:
    async with (
        open_hub(dsn, load_config(config), ApiLimits()) as hub,
        serving(hub, "127.0.0.1", 0) as url,
        Console(url) as console,
    ):
        await console.sign_in(key)
        status, page, _ = await console.get(f"/console/events/{position}")
    line = next((ln for ln in page.splitlines() if 'id="signature"' in ln), "")
    return status, line


async def test_a_delivery_verifies_only_with_the_secret_it_was_signed_with(
    hub: HubContext, api: str, dsn: str, store: EventStore, tmp_path: Path
) -> None:
    charge = next(e for e in stripe_scenario().before_payout if e.type == "stripe.charge.succeeded")
    async with aiohttp.ClientSession() as http:
        position = await deliver_webhook(http, api, charge.data)
    [elsewhere] = await store.append([event("theirs", tenant="t2")])
    key = await console_key(hub, "read")
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    (rotated / "stripe.secret").write_text("whsec_someone_else\n")
    (rotated / "ledgerhub.toml").write_text(
        '[[connections]]\nid = "stripe:acct_demo"\nconnector = "stripe"\n'
        'webhook_secret = "file:stripe.secret"\n'
    )
    forgotten = tmp_path / "forgotten.toml"
    forgotten.write_text("")
    async with Console(api) as console:
        await console.sign_in(key)
        status, page, _ = await console.get(f"/console/events/{position}")
        hidden, _, _ = await console.get(f"/console/events/{elsewhere.position}")
    assert status == 200
    assert "Signature verified" in page
    assert hidden == 404, "another tenant's event is not there for this key"
    changed = await _signature_line(dsn, rotated / "ledgerhub.toml", position, key)
    assert changed[0] == 200
    assert "Signature does not verify" in changed[1]
    unknown = await _signature_line(dsn, forgotten, position, key)
    assert "Signature cannot be checked" in unknown[1]
    assert "not configured" in unknown[1]
