-- Analyst views belong to the projection that defines them (Projection.views), not to the core
-- schema. The projection runtime creates them in ledgerhub_views over the generation that becomes
-- active, in the transaction that makes it active (a projection's first generation, or the swap
-- after a rebuild), so analysts read the old generation until the new one is complete, and a
-- view always matches the tables of the version of the code that built them (migration 0015 had
-- to guess that from pg_attribute).
--
-- What stays here is the framework's part: schema ledgerhub_views and role ledgerhub_analyst
-- (migration 0011), the hub's right to create the views, and the record of what each
-- projection's views consist of.
--
-- Migrations 0011, 0012, 0014 and 0015 created the reconciliation views. They are left as they
-- were: deployed databases have applied them, and `ledgerhub migrate` refuses a migration whose
-- checksum changed after it was applied. This one drops what they created; the reconciliation
-- projection creates its views again, with the same names and columns, as soon as a worker runs
-- it (on start, for its active generation). Until then they are absent (the HTTP routes answer
-- 404, as before a first build). A view of an analyst's own that depends on one of them makes
-- this migration fail, naming it: drop it, migrate, and create it again once the worker has run.

DROP VIEW IF EXISTS
    ledgerhub_views.reconciliation_payouts,
    ledgerhub_views.reconciliation_exceptions,
    ledgerhub_views.reconciliation_bank_lines,
    ledgerhub_views.reconciliation_orders,
    ledgerhub_views.reconciliation_payments,
    ledgerhub_views.clearing_tieout;

DROP FUNCTION IF EXISTS
    ledgerhub_views.reconciliation_payouts_at(date),
    ledgerhub_views.reconciliation_exceptions_at(date),
    ledgerhub_views.reconciliation_stored_exceptions_at(date),
    ledgerhub_views.reconciliation_bank_lines_all(),
    ledgerhub_views.reconciliation_orders_all(),
    ledgerhub_views.reconciliation_payments_all(),
    ledgerhub_views.clearing_tieout_at(date),
    ledgerhub_views.clearing_exceptions_at(date);

-- One row per analyst view: the projection it belongs to, the generation it reads, a checksum
-- of its definition (applying an unchanged definition again does nothing), and the objects it
-- consists of in the order to drop them (e.g. 'FUNCTION ledgerhub_views.x_at(date)', 'VIEW
-- ledgerhub_views.x').
CREATE TABLE ledgerhub.projection_views (
    name       text        PRIMARY KEY,
    projection text        NOT NULL REFERENCES ledgerhub.projections (name),
    generation integer     NOT NULL,
    ordinal    integer     NOT NULL,
    checksum   text        NOT NULL,
    objects    text[]      NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, DELETE ON ledgerhub.projection_views TO ledgerhub_app;

-- The hub's role creates (and so owns) the views and the functions behind them, and grants
-- ledgerhub_analyst SELECT on each view and EXECUTE on each function; the functions run as their
-- owner (SECURITY DEFINER), so ledgerhub_analyst needs no right outside this schema.
GRANT USAGE, CREATE ON SCHEMA ledgerhub_views TO ledgerhub_app;
