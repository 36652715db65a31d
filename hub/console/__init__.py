"""The web console ``serve`` answers at ``/console/``: server-rendered pages (Jinja2,
autoescaped), one stylesheet, no JavaScript and no build step; every form works without
scripts.

Sign in with a ``read`` or ``operate`` key (``session``); every write is a form POST carrying
the session's CSRF token (``csrf``). The pages (``routes``): an overview (projections, health,
runs), reconciliation (payouts, exceptions and resolving them, an order's chain, a chart of
payouts against deposits), the ledger down to the stored event, its raw delivery and whether
its signature verifies, and parked events (retry, skip). What the console shows of the books
comes from the installed projections through ``hub.spi.console``.
"""
