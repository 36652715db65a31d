"""A console user without a browser: an aiohttp session with a cookie jar, signing in through
the form as a browser does, reading the hidden CSRF field of each page."""

from __future__ import annotations

import hashlib
import hmac
import re
import ssl
import time
from typing import Any

import aiohttp
import orjson

from hub.api.context import HubContext
from hub.domain.keys import Scope, key_digest, key_prefix, new_key
from tests.console.conftest import STRIPE_SECRET

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def console_key(hub: HubContext, *scopes: str, tenant: str = "default") -> str:
    """A key with ``scopes``, stored the way ``keys create`` stores it."""
    key = new_key()
    await hub.keys.create(
        digest=key_digest(key),
        prefix=key_prefix(key),
        tenant=tenant,
        scopes=[Scope.parse(s) for s in scopes],
    )
    return key


def csrf_of(page: str) -> str:
    """The CSRF token in a page's forms."""
    found = _CSRF.search(page)
    assert found is not None, "the page has no form with a CSRF token"
    return found[1]


class Console:
    """One person's browser-less session with the console at ``url``."""

    def __init__(self, url: str, *, tls: ssl.SSLContext | None = None) -> None:
        self.url = url
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # the server is an IP address
            headers={"Origin": url, "Sec-Fetch-Site": "same-origin"},
            connector=aiohttp.TCPConnector(ssl=tls) if tls is not None else None,
        )
        self.csrf = ""

    async def __aenter__(self) -> Console:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()

    async def get(self, path: str, **params: str) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.get(self.url + path, params=params, allow_redirects=False) as r:
            text = await r.text()
            if r.status == 200 and 'name="csrf"' in text:
                self.csrf = csrf_of(text)
            return r.status, text, r

    async def post(
        self, path: str, data: dict[str, str], *, headers: dict[str, str] | None = None,
        csrf: bool = True,
    ) -> tuple[int, str, aiohttp.ClientResponse]:  # fmt: skip
        form: dict[str, Any] = {**({"csrf": self.csrf} if csrf else {}), **data}
        async with self.http.post(
            self.url + path, data=form, headers=headers or {}, allow_redirects=False
        ) as r:
            return r.status, await r.text(), r

    async def sign_in(self, key: str) -> aiohttp.ClientResponse:
        """Sign in through the form; the answer (303 to the overview when it worked)."""
        status, _, _ = await self.get("/console/sign-in")
        assert status == 200
        _, _, response = await self.post("/console/sign-in", {"key": key})
        if response.status == 303:
            await self.get("/console/")
        return response


async def deliver_webhook(http: aiohttp.ClientSession, api: str, data: object) -> int:
    """POST ``data`` as Stripe sends a webhook, signed with the connection's secret; its
    position in the log."""
    body = orjson.dumps(data)
    t = int(time.time())
    signature = hmac.new(STRIPE_SECRET, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Stripe-Signature": f"t={t},v1={signature}", "Content-Type": "application/json"}
    async with http.post(f"{api}/v1/webhooks/stripe/acct_demo", data=body, headers=headers) as r:
        assert r.status == 200, await r.text()
        [result] = (await r.json())["results"]
    return int(result["position"])
