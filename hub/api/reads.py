"""What every read route shares: whose books a key may read, and JSON-or-CSV answers."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from hub.api.auth import current_key
from hub.domain.events import DEFAULT_TENANT
from hub.domain.keys import ALL_TENANTS
from hub.errors import Forbidden


def read_tenant(request: web.Request, asked: str | None) -> str:
    """The tenant a read is for: ``asked``, else the key's own (``default`` for an all-tenant
    key); 403 if the key may not read it."""
    key = current_key(request)
    tenant = asked or (DEFAULT_TENANT if key.tenant == ALL_TENANTS else key.tenant)
    if not key.may_access_tenant(tenant):
        raise Forbidden(f"the key of tenant {key.tenant!r} may not read tenant {tenant!r}")
    return tenant


def wants_csv(request: web.Request) -> bool:
    """Whether the client asked for CSV (``Accept: text/csv``)."""
    return "text/csv" in request.headers.get("Accept", "")


def csv_response(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> web.Response:
    """``rows`` as a CSV document with a header line of ``columns``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return web.Response(text=out.getvalue(), content_type="text/csv")
