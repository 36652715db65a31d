-- Reconciliation for analysts: views in schema ledgerhub_views, and a read-only role.
--
-- The reconciliation projection's tables live in ledgerhub_projections, one set per generation,
-- behind views the runtime drops and recreates when a rebuild is swapped in. A view here cannot
-- depend on those directly (the swap's DROP VIEW would fail), so each view reads through a
-- function that names the projection's view at run time. The functions run as ledgerhub_app
-- (which owns the projection's tables), so ledgerhub_analyst needs no right outside this schema.
--
-- Statuses that depend on the day (pending or missing_deposit) are evaluated against as_of, or,
-- when null, today in each row's tenant time zone. The column lists are those of the
-- reconciliation projection's version 1 tables; a version that changes them replaces these
-- functions in a new migration.

CREATE SCHEMA ledgerhub_views;

DO $$
BEGIN
    CREATE ROLE ledgerhub_analyst NOLOGIN;
EXCEPTION
    -- another database on this server (or a concurrent migrate) created it first
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

CREATE FUNCTION ledgerhub_views.reconciliation_payouts_at(as_of date)
RETURNS TABLE (
    tenant text, source text, payout_id text, currency text, amount_minor bigint,
    arrival_date date, status text, bank_line text, difference_minor bigint,
    gross_minor bigint, refunds_minor bigint, fees_minor bigint, disputes_minor bigint,
    adjustments_minor bigint, window_end date
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RETURN QUERY EXECUTE $q$
        SELECT p.tenant, p.source, p.payout_id, p.currency, p.amount_minor, p.arrival_date,
               CASE WHEN p.match_state <> 'unmatched' THEN p.match_state
                    WHEN coalesce($1, (now() AT TIME ZONE p.timezone)::date) > p.window_end
                    THEN 'missing_deposit'
                    ELSE 'pending' END,
               p.bank_line, p.difference_minor, p.gross_minor, p.refunds_minor, p.fees_minor,
               p.disputes_minor, p.adjustments_minor, p.window_end
        FROM ledgerhub_projections."reconciliation__payouts" AS p
        WHERE p.payout_status NOT IN ('failed', 'canceled')
    $q$ USING as_of;
END
$fn$;

CREATE FUNCTION ledgerhub_views.reconciliation_exceptions_at(as_of date)
RETURNS TABLE (
    tenant text, id text, kind text, source text, reference text, amount_minor bigint,
    currency text, difference_minor bigint, detail text, resolved boolean,
    resolution_reason text
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RETURN QUERY EXECUTE $q$
        SELECT e.tenant, e.id, e.kind, e.source, e.reference, e.amount_minor, e.currency,
               e.difference_minor, e.detail, coalesce(r.resolved, false),
               CASE WHEN r.resolved THEN r.reason END
        FROM ledgerhub_projections."reconciliation__exceptions" AS e
        LEFT JOIN ledgerhub_projections."reconciliation__resolutions" AS r
               ON r.tenant = e.tenant AND r.exception_id = e.id
        WHERE e.due_date IS NULL
           OR coalesce($1, (now() AT TIME ZONE e.timezone)::date) > e.due_date
    $q$ USING as_of;
END
$fn$;

CREATE FUNCTION ledgerhub_views.reconciliation_bank_lines_all()
RETURNS TABLE (
    tenant text, source text, line_id text, account text, currency text, amount_minor bigint,
    business_date date, payee text, description text, matched_payout text, duplicate_of text
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RETURN QUERY EXECUTE $q$
        SELECT b.tenant, b.source, b.line_id, b.account, b.currency, b.amount_minor,
               b.business_date, b.payee, b.description, b.matched_payout, b.duplicate_of
        FROM ledgerhub_projections."reconciliation__bank_lines" AS b
    $q$;
END
$fn$;

ALTER FUNCTION ledgerhub_views.reconciliation_payouts_at(date) OWNER TO ledgerhub_app;
ALTER FUNCTION ledgerhub_views.reconciliation_exceptions_at(date) OWNER TO ledgerhub_app;
ALTER FUNCTION ledgerhub_views.reconciliation_bank_lines_all() OWNER TO ledgerhub_app;

CREATE VIEW ledgerhub_views.reconciliation_payouts AS
    SELECT * FROM ledgerhub_views.reconciliation_payouts_at(NULL);
COMMENT ON VIEW ledgerhub_views.reconciliation_payouts IS
    'one row per payout expected at the bank: status matched | pending | missing_deposit | '
    'amount_mismatch (difference_minor = deposit - payout), bank_line, and the composition '
    '(signed components that sum to amount_minor)';

CREATE VIEW ledgerhub_views.reconciliation_exceptions AS
    SELECT * FROM ledgerhub_views.reconciliation_exceptions_at(NULL);
COMMENT ON VIEW ledgerhub_views.reconciliation_exceptions IS
    'what an analyst acts on: missing_deposit, amount_mismatch, unexplained_deposit, '
    'duplicate_bank_line, composition_mismatch; resolved by a reconciliation.exception.resolved '
    'event';

CREATE VIEW ledgerhub_views.reconciliation_bank_lines AS
    SELECT * FROM ledgerhub_views.reconciliation_bank_lines_all();
COMMENT ON VIEW ledgerhub_views.reconciliation_bank_lines IS
    'bank statement lines with the payout each deposit matched and the line each duplicates';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ledgerhub_views FROM PUBLIC;
GRANT USAGE ON SCHEMA ledgerhub_views TO ledgerhub_analyst, ledgerhub_app;
GRANT SELECT ON ALL TABLES IN SCHEMA ledgerhub_views TO ledgerhub_analyst, ledgerhub_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ledgerhub_views TO ledgerhub_analyst, ledgerhub_app;
