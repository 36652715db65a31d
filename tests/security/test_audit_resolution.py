"""An exception's resolution is the audit record of itself: its event carries the key's id and
the client address, and the audit listing shows it."""

from __future__ import annotations

import aiohttp

from hub.api.context import HubContext
from hub.store import EventStore
from tests.api.conftest import bearer
from tests.ledger.conftest import config
from tests.reconciliation.conftest import recon
from tests.reconciliation.harness import Recon, reconciliation_running
from tests.reconciliation.scenarios import statement, stripe_month
from tests.security.conftest import create_key, serve

__all__ = ["config", "recon"]


async def test_a_resolution_names_its_key_and_address_and_is_in_the_audit_listing(
    dsn: str, store: EventStore, recon: Recon, hub: HubContext
) -> None:
    month = stripe_month(seed=5)
    resolver, resolving = await create_key(hub, "ingest:reconciliation:manual")
    operator, _ = await create_key(hub, "operate", tenant="*")
    async with (
        serve(hub) as served,
        reconciliation_running(dsn),
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as http,
    ):
        await store.append([*month.events, *statement(month).lines])
        await recon.settle()
        [mismatch] = await recon.exceptions(kind="amount_mismatch")
        body = {"exception_id": mismatch["id"], "reason": "a bank fee of one cent, confirmed"}
        async with http.post(
            f"{served.url}/v1/reconciliation/resolutions", json=body, headers=bearer(resolver)
        ) as response:
            assert response.status == 202, await response.text()
            accepted = await response.json()
        await recon.settle()
        async with http.get(f"{served.url}/v1/audit", headers=bearer(operator)) as response:
            assert response.status == 200
            [entry] = (await response.json())["entries"]
    [resolution] = await store.read_after(accepted["position"] - 1, limit=1)
    assert resolution.meta["key_id"] == str(resolving.id)
    assert resolution.meta["client"] == "127.0.0.2"
    assert resolution.meta["api_key"] == resolving.prefix
    assert entry == {
        "position": accepted["position"],
        "at": entry["at"],
        "tenant": "default",
        "action": "exception.resolved",
        "by": str(resolving.id),
        "key_prefix": resolving.prefix,
        "from": "127.0.0.2",
        "subject": body,
    }
