"""Rendering console pages: the Jinja2 environment (autoescaping on), what every page gets,
and the error page."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from hub.api.context import context
from hub.console import chart, format
from hub.console.session import SESSION
from hub.domain.keys import ALL_TENANTS, Access

_NAV = (
    ("overview", "/console/", "Overview", None),
    ("payouts", "/console/reconciliation", "Payouts", Access.READ),
    ("exceptions", "/console/exceptions", "Exceptions", Access.READ),
    ("ledger", "/console/ledger", "Ledger", Access.READ),
    ("chart", "/console/chart", "Chart", Access.READ),
    ("parked", "/console/parked", "Parked", Access.OPERATE),
)


@functools.cache
def environment() -> jinja2.Environment:
    """The templates of ``hub/console/templates``, autoescaped."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hub.console", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = lambda minor, currency: format.money(minor, currency)
    env.filters["day"] = format.day
    env.filters["json"] = format.pretty_json
    env.filters["segment"] = lambda value: quote(str(value), safe="")
    env.globals["chart_size"] = (chart.WIDTH, chart.HEIGHT)
    return env


def link(path: str, **params: object) -> str:
    """``path`` with the query ``params`` that are not None or empty."""
    kept = {k: str(v) for k, v in params.items() if v is not None and v != ""}
    return f"{path}?{urlencode(kept)}" if kept else path


def render(
    request: web.Request, template: str, *, status: int = 200, **values: Any
) -> web.Response:
    """``template`` rendered with ``values`` and what every page shows (who is signed in, the
    navigation for their key, the CSRF token, the tenant's zone)."""
    values.setdefault("active", "")
    values.setdefault("notice", "")
    session = request.get(SESSION)
    key = session.key if session is not None else None
    tenant = values.get("tenant")
    config = context(request).config
    zone = config.tenant(tenant).zone if isinstance(tenant, str) else None
    nav = [
        (name, path, label)
        for name, path, label, access in _NAV
        if key is not None and (access is None or key.grants(access))
    ]
    page = (
        environment()
        .get_template(template)
        .render(
            session=session,
            key=key,
            nav=nav,
            csrf=session.csrf if session is not None else values.pop("csrf", ""),
            all_tenants=key is not None and key.tenant == ALL_TENANTS,
            can_operate=key is not None and key.grants(Access.OPERATE),
            can_read=key is not None and key.grants(Access.READ),
            link=link,
            when=lambda value: format.local_time(value, zone) if zone else str(value or ""),
            zone_name=str(zone) if zone else "UTC",
            **values,
        )
    )
    response = web.Response(text=page, content_type="text/html", charset="utf-8", status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def error_page(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    """The console's error page (a page, never problem+json)."""
    return render(request, "error.html", status=status, title=title, detail=detail, tenant=None)
