"""The console over real HTTP without a browser: the session cookie, who may sign in, CSRF on
every post, what a read key is refused, signing out, and errors as pages."""

from __future__ import annotations

import re
import ssl
from datetime import timedelta
from pathlib import Path

import asyncpg
from yarl import URL

from hub.api.context import HubContext
from hub.api.server import serving, tls_context
from hub.console.routes import ROUTES
from hub.domain.health import CheckResult
from hub.domain.keys import key_digest
from hub.store import EventStore
from hub.store.health import HealthStore
from hub.store.runs import RunLog, RunTally
from tests.api.test_key_security import self_signed
from tests.console.client import Console, console_key
from tests.reconciliation.conftest import recon
from tests.reconciliation.harness import Recon
from tests.reconciliation.scenarios import statement, stripe_month

__all__ = ["recon"]


def _cookie_header(response: object, name: str) -> str:
    headers = response.headers.getall("Set-Cookie", [])  # type: ignore[attr-defined]
    found = [h for h in headers if h.startswith(f"{name}=")]
    assert len(found) == 1, headers
    return str(found[0])


async def test_sign_in_opens_a_session_in_a_strict_http_only_cookie_holding_no_key(
    hub: HubContext, api: str, dsn: str
) -> None:
    key = await console_key(hub, "read")
    async with Console(api) as console:
        response = await console.sign_in(key)
        assert (response.status, response.headers["Location"]) == (303, "/console/")
        cookie = _cookie_header(response, "ledgerhub_console")
        status, page, _ = await console.get("/console/")
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/console/" in flags
    assert "secure" not in flags, "plain HTTP here: Secure only over TLS"
    assert key not in cookie
    assert status == 200
    assert key[:9] in page, "the page names the key by its prefix"
    assert key not in page
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT s.*, k.key_hash FROM ledgerhub.console_sessions s "
                                "JOIN ledgerhub.api_keys k ON k.id = s.key_id")  # fmt: skip
    finally:
        await conn.close()
    assert len(rows) == 1
    assert rows[0]["key_hash"] == key_digest(key), "the session is the key's, by its id"
    assert key.encode() not in b"".join(str(v).encode() for v in rows[0].values())


async def test_only_an_active_read_or_operate_key_signs_in_and_revoking_it_ends_the_session(
    hub: HubContext, api: str
) -> None:
    ingest = await console_key(hub, "ingest:stripe:acct_demo")
    operate = await console_key(hub, "operate")
    async with Console(api) as console:
        unknown = await console.sign_in("lh_not_a_key_at_all")
        unknown_page = await unknown.text()
        refused = await console.sign_in(ingest)
        refused_page = await refused.text()
        assert "ledgerhub_console" not in str(console.http.cookie_jar.filter_cookies(URL(api)))
        signed_in = await console.sign_in(operate)
        before, _, _ = await console.get("/console/")
        await hub.keys.revoke(operate[:9])
        assert hub.key_cache is not None
        hub.key_cache.clear()
        after, _, gone = await console.get("/console/ledger")
    assert (unknown.status, refused.status, signed_in.status) == (401, 403, 303)
    assert "is not known" in unknown_page
    assert "do not grant read or operate" in refused_page
    assert unknown.content_type == refused.content_type == "text/html"
    assert before == 200
    assert after == 303
    assert gone.headers["Location"].startswith("/console/sign-in")


async def test_every_post_needs_the_session_csrf_token_and_the_console_s_own_origin(
    hub: HubContext, api: str, dsn: str
) -> None:
    key = await console_key(hub, "read", "operate")
    async with Console(api) as console:
        await console.sign_in(key)
        token = console.csrf
        missing, _, _ = await console.post("/console/sign-out", {}, csrf=False)
        wrong, _, _ = await console.post("/console/sign-out", {"csrf": token[:-2] + "xx"})
        cross_origin, _, _ = await console.post(
            "/console/sign-out", {}, headers={"Origin": "http://evil.example"}
        )
        cross_site, page, _ = await console.post(
            "/console/sign-out", {}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        still, _, _ = await console.get("/console/")
        out, _, response = await console.post("/console/sign-out", {})
        cleared = _cookie_header(response, "ledgerhub_console")
        after, _, _ = await console.get("/console/")
    async with Console(api) as forger:
        # a sign-in post from another site: no token cookie of the form, so refused
        no_form, _, _ = await forger.post("/console/sign-in", {"key": key, "csrf": "x" * 43})
    assert (missing, wrong, cross_origin, cross_site) == (403, 403, 403, 403)
    assert "cross-site" in page
    assert still == 200, "a refused post changes nothing"
    assert (out, response.headers["Location"]) == (303, "/console/sign-in")
    assert "max-age=0" in cleared.lower() or "expires=" in cleared.lower()
    assert after == 303, "signed out"
    assert no_form == 403
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM ledgerhub.console_sessions") == 0
    finally:
        await conn.close()


async def test_a_read_key_sees_no_operate_action_and_a_forged_post_is_refused(
    hub: HubContext, api: str, store: EventStore, recon: Recon
) -> None:
    month = stripe_month()
    await recon.run(store, [*month.events, *statement(month).lines])
    [exception, *_] = await recon.exceptions(resolved=False)
    head = await store.head()
    read = await console_key(hub, "read")
    operator = await console_key(hub, "read", "operate")
    async with Console(api) as console:
        await console.sign_in(read)
        status, page, _ = await console.get("/console/exceptions", as_of="2030-01-01")
        forged, refusal, _ = await console.post(
            "/console/exceptions/resolve",
            {"exception_id": exception["id"], "reason": "forged", "resolved": "true"},
        )
        parked, _, _ = await console.get("/console/parked")
        retry, _, _ = await console.post("/console/parked/1/retry", {})
    async with Console(api) as console:
        await console.sign_in(operator)
        _, operator_page, _ = await console.get("/console/exceptions", as_of="2030-01-01")
    assert status == 200
    assert f'data-exception="{exception["id"]}"' in page
    assert "/console/exceptions/resolve" not in page, "no resolve form for a read key"
    assert "/console/parked" not in page, "no link to the operator's page"
    assert forged == 403
    assert "may not resolve" in refusal
    assert (parked, retry) == (403, 403)
    assert await store.head() == head, "nothing was appended"
    assert "/console/exceptions/resolve" in operator_page
    assert 'href="/console/parked' in operator_page


async def test_mistakes_and_missing_things_are_pages_not_tracebacks(
    hub: HubContext, api: str
) -> None:
    key = await console_key(hub, "read", "operate")
    async with Console(api) as console:
        await console.sign_in(key)
        answers = {}
        for path, params in [
            ("/console/ledger", {"as_of": "yesterday"}),
            ("/console/ledger", {}),
            ("/console/events/999", {}),
            ("/console/events/x1", {}),
            ("/console/reconciliation", {"status": "lost"}),
            ("/console/parked/abc/retry", {}),
        ]:
            status, page, response = await console.get(path, **params)
            answers[path, tuple(params)] = (status, response.content_type, "Traceback" in page)
    assert answers == {
        ("/console/ledger", ("as_of",)): (422, "text/html", False),
        ("/console/ledger", ()): (404, "text/html", False),
        ("/console/events/999", ()): (404, "text/html", False),
        ("/console/events/x1", ()): (404, "text/html", False),
        ("/console/reconciliation", ("status",)): (422, "text/html", False),
        ("/console/parked/abc/retry", ()): (405, "application/problem+json", False),
    }


async def test_without_a_session_every_page_leads_to_the_sign_in_form_and_every_post_is_refused(
    api: str,
) -> None:
    open_paths = {"/console", "/console/sign-in", "/console/static/console.css"}
    answers = {}
    async with Console(api) as console:
        for method, path, _ in ROUTES:
            url = re.sub(r"{[^}]+}", "1", path)
            if path in open_paths:
                continue
            if method == "GET":
                status, _, response = await console.get(url)
                answers[path] = (status, response.headers.get("Location", "").split("?")[0])
            else:
                status, _, _ = await console.post(url, {"csrf": "x" * 43})
                answers[path] = (status, "")
        assert (await console.get("/console/static/console.css"))[0] == 200
        assert (await console.get("/console"))[2].headers["Location"] == "/console/"
    pages = {path: (303, "/console/sign-in") for m, path, _ in ROUTES if m == "GET"}
    posts = {path: (403, "") for m, path, _ in ROUTES if m == "POST" and path != "/console/sign-in"}
    assert answers == {
        path: expected
        for path, expected in {**pages, **posts}.items()
        if path not in open_paths and path != "/console/sign-in"
    }


async def test_the_overview_shows_an_operator_projections_connection_health_and_runs(
    hub: HubContext, api: str
) -> None:
    health = HealthStore.over(hub.store)
    await health.record(
        CheckResult("stripe:acct_demo", "default", False, "the API answered 401"),
        timedelta(hours=1),
    )
    await health.record(CheckResult("bank:checking", "t2", True, "fresh"), timedelta(hours=1))
    runs = RunLog.over(hub.store)
    run = await runs.start("pull", "default", "stripe:acct_demo")
    await runs.finish(run, RunTally(status="failed", errors=3, error="rate limited"))
    operator = await console_key(hub, "read", "operate")
    async with Console(api) as console:
        await console.sign_in(operator)
        _, page, _ = await console.get("/console/")
    async with Console(api) as console:
        await console.sign_in(await console_key(hub, "read"))
        _, reader, _ = await console.get("/console/")
    assert 'data-connection="stripe:acct_demo"' in page
    assert "failing" in page
    assert "the API answered 401" in page
    assert "bank:checking" not in page, "another tenant's connection"
    assert "rate limited" in page
    assert "No projection has run yet." in page
    for shown in ("Connection health", "Recent runs", "Projections"):
        assert shown not in reader, "a read key sees no operator's tables"


async def test_a_notice_shows_only_when_the_console_itself_sent_it(
    hub: HubContext, api: str
) -> None:
    async with Console(api) as console:
        await console.sign_in(await console_key(hub, "read", "operate"))
        _, forged, _ = await console.get("/console/parked", notice="Call +1 555 0100 now")
        _, sealed, _ = await console.get(
            "/console/parked", notice="Call +1 555 0100 now", mac="0" * 32
        )
    assert "555 0100" not in forged
    assert "555 0100" not in sealed


async def test_over_https_the_session_cookie_is_also_secure(
    hub: HubContext, tmp_path: Path
) -> None:
    cert, key_file = self_signed(tmp_path)
    trusting = ssl.create_default_context(cafile=str(cert))
    key = await console_key(hub, "read")
    async with (
        serving(hub, "127.0.0.1", 0, tls=tls_context(cert, key_file)) as url,
        Console(url, tls=trusting) as console,
    ):
        response = await console.sign_in(key)
        status, _, _ = await console.get("/console/")
    assert url.startswith("https://")
    assert response.status == 303
    cookie = _cookie_header(response, "ledgerhub_console")
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]
    assert status == 200
