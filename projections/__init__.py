"""The built-in projections (entry points ``ledgerhub.projections``): ``event_counts``,
``ledger`` (the double-entry journal), ``reconciliation`` (payouts, deposits, orders,
exceptions) and ``accounting`` (the documents targets should hold). Each owns its tables, views,
routes and config section; they read canonical facts and import no connector."""
