-- Clearing-account tie-out: per tenant, processor (its clearing:<processor> account), currency and
-- business day, the ledger's clearing balance at the end of the day against what the processor
-- itself says it still owes, and the days that disagree as exceptions.
--
-- ledger_balance_minor: every posting of the ledger projection's journal to the tenant's account
--   with role clearing:<processor> dated on or before the day (debit positive).
-- processor_unpaid_minor: the net (as the processor states it, not amount - a mapped fee) of
--   every balance transaction the reconciliation projection stores for that processor (version 6
--   and later: movements carry their net, business date and processor), dated on or before the
--   day, less those carried by a payout that is paid and whose arrival date is on or before the
--   day. The payouts' own balance transactions
--   (category payout, payout_reversal, payout_cancel, payout_failure) are left out: the payout is
--   what settles the others.
-- difference_minor = ledger_balance_minor - processor_unpaid_minor (positive: the books hold
--   more than the processor owes, e.g. a fee the books missed).
--
-- Days: only days with activity on either side (a posting to the clearing account, a balance
-- transaction dated that day, a paid payout arriving that day); a day not listed has the balance
-- of the last listed day before it. Only (tenant, processor, currency) for which the processor's
-- balance transactions are stored are listed: without them there is nothing to tie out against.
--
-- Status, evaluated on as_of (null: today in the tenant's time zone, as in 0011): tied (0
-- difference), pending (a difference, but the day is less than the tenant's tieout_grace_days
-- old: the processor's balance transactions are pulled per payout, days later), off.
--
-- An off day whose difference is not the previous listed day's (the day a disagreement arose or
-- changed) is an amount_mismatch exception (source clearing:<processor>, reference
-- <account>/<currency>/<day>), listed by reconciliation_exceptions_at, so a resolution event
-- applies to it like to any other. One missed fee is one exception, not one per later day.
--
-- Both projections are read as they are: while one worker lags the other, recent days may show
-- a difference that goes away once both have caught up (hence the grace). Before the ledger or
-- a reconciliation generation with dated movements exists, the tie-out is empty.

CREATE FUNCTION ledgerhub_views.clearing_tieout_at(as_of date)
RETURNS TABLE (
    tenant text, processor text, clearing_account text, currency text, business_date date,
    ledger_balance_minor bigint, processor_unpaid_minor bigint, difference_minor bigint,
    difference_change_minor bigint, status text
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF to_regclass('ledgerhub_projections."ledger__journal"') IS NULL
       OR to_regclass('ledgerhub_projections."ledger__accounts"') IS NULL
       OR to_regclass('ledgerhub_projections."reconciliation__tenants"') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        WITH clearing AS (
            SELECT a.tenant, a.code, substr(a.role, length('clearing:') + 1) AS processor
            FROM ledgerhub_projections."ledger__accounts" AS a
            WHERE a.role LIKE 'clearing:%'
        ),
        settled AS (
            SELECT m.tenant, m.processor, m.currency, m.business_date,
                   m.net_minor AS net,
                   CASE WHEN p.payout_status = 'paid'
                        THEN greatest(p.arrival_date, m.business_date) END AS paid_on
            FROM ledgerhub_projections."reconciliation__movements" AS m
            LEFT JOIN ledgerhub_projections."reconciliation__payouts" AS p
                   ON p.tenant = m.tenant AND p.source = m.source AND p.payout_id = m.payout_id
            WHERE m.category NOT IN ('payout', 'payout_reversal', 'payout_cancel',
                                     'payout_failure')
        ),
        processor_days AS (
            SELECT s.tenant, s.processor, s.currency, d.day, sum(d.moved) AS processor_moved
            FROM settled AS s
            CROSS JOIN LATERAL (VALUES (s.business_date, s.net), (s.paid_on, -s.net))
                 AS d(day, moved)
            WHERE d.day IS NOT NULL
            GROUP BY 1, 2, 3, 4
        ),
        ledger_days AS (
            SELECT j.tenant, c.processor, pst.currency, j.business_date AS day,
                   sum(pst.amount) AS ledger_moved
            FROM ledgerhub_projections."ledger__journal" AS j
            CROSS JOIN LATERAL unnest(j.accounts, j.currencies, j.amounts)
                 AS pst(account, currency, amount)
            JOIN clearing AS c ON c.tenant = j.tenant AND c.code = pst.account
            GROUP BY 1, 2, 3, 4
        ),
        days AS (
            SELECT x.tenant, x.processor, x.currency, x.day,
                   sum(coalesce(x.ledger_moved, 0)) OVER w AS ledger,
                   sum(coalesce(x.processor_moved, 0)) OVER w AS unpaid
            FROM (SELECT * FROM ledger_days
                  FULL JOIN processor_days USING (tenant, processor, currency, day)) AS x
            WHERE EXISTS (SELECT 1 FROM processor_days AS k
                          WHERE k.tenant = x.tenant AND k.processor = x.processor
                            AND k.currency = x.currency)
            WINDOW w AS (PARTITION BY x.tenant, x.processor, x.currency ORDER BY x.day)
        ),
        differences AS (
            SELECT d.*, d.ledger - d.unpaid AS difference,
                   d.ledger - d.unpaid - coalesce(lag(d.ledger - d.unpaid) OVER (
                       PARTITION BY d.tenant, d.processor, d.currency ORDER BY d.day), 0)
                       AS change
            FROM days AS d
        )
        SELECT f.tenant, f.processor, c.code, f.currency, f.day, f.ledger::bigint,
               f.unpaid::bigint, f.difference::bigint, f.change::bigint,
               CASE WHEN f.difference = 0 THEN 'tied'
                    WHEN coalesce($1, (now() AT TIME ZONE coalesce(t.timezone, 'UTC'))::date)
                         > f.day + coalesce(t.tieout_grace_days, 5)
                    THEN 'off'
                    ELSE 'pending' END
        FROM differences AS f
        JOIN clearing AS c ON c.tenant = f.tenant AND c.processor = f.processor
        LEFT JOIN ledgerhub_projections."reconciliation__tenants" AS t ON t.tenant = f.tenant
    $q$ USING as_of;
END
$fn$;

-- The clearing days that do not tie, as exception rows (with their resolution, as in 0011).
CREATE FUNCTION ledgerhub_views.clearing_exceptions_at(as_of date)
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
        SELECT x.tenant, x.id, 'amount_mismatch', x.source, x.reference,
               x.processor_unpaid_minor, x.currency, x.difference_minor,
               format('clearing account %s (clearing:%s) at the end of %s: the books hold %s %s, '
                      '%s says %s is unpaid; difference %s%s (%s%s that day)',
                      x.clearing_account, x.processor, x.business_date,
                      x.ledger_balance_minor, x.currency, x.processor,
                      x.processor_unpaid_minor,
                      CASE WHEN x.difference_minor > 0 THEN '+' ELSE '' END, x.difference_minor,
                      CASE WHEN x.difference_change_minor > 0 THEN '+' ELSE '' END,
                      x.difference_change_minor),
               coalesce(r.resolved, false), CASE WHEN r.resolved THEN r.reason END
        FROM (
            SELECT t.*, 'clearing:' || t.processor AS source,
                   t.clearing_account || '/' || t.currency || '/' || t.business_date AS reference,
                   'amount_mismatch:clearing:' || t.processor || '/' || t.clearing_account || '/'
                       || t.currency || '/' || t.business_date AS id
            FROM ledgerhub_views.clearing_tieout_at($1) AS t
            WHERE t.status = 'off' AND t.difference_change_minor <> 0
        ) AS x
        LEFT JOIN ledgerhub_projections."reconciliation__resolutions" AS r
               ON r.tenant = x.tenant AND r.exception_id = x.id
    $q$ USING as_of;
END
$fn$;

-- reconciliation_exceptions_at (0011) becomes the exceptions the projection stores, and the
-- name now lists those and the clearing ones, so the exceptions view, the HTTP route and
-- resolutions (which check the id against it) see both.
ALTER FUNCTION ledgerhub_views.reconciliation_exceptions_at(date)
    RENAME TO reconciliation_stored_exceptions_at;

CREATE FUNCTION ledgerhub_views.reconciliation_exceptions_at(as_of date)
RETURNS TABLE (
    tenant text, id text, kind text, source text, reference text, amount_minor bigint,
    currency text, difference_minor bigint, detail text, resolved boolean,
    resolution_reason text
)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT * FROM ledgerhub_views.reconciliation_stored_exceptions_at(as_of)
    UNION ALL
    SELECT * FROM ledgerhub_views.clearing_exceptions_at(as_of)
$fn$;

CREATE OR REPLACE VIEW ledgerhub_views.reconciliation_exceptions AS
    SELECT * FROM ledgerhub_views.reconciliation_exceptions_at(NULL);
COMMENT ON VIEW ledgerhub_views.reconciliation_exceptions IS
    'what an analyst acts on: missing_deposit, amount_mismatch (a payout, an order, or a '
    'clearing account on a day: source clearing:<processor>), unexplained_deposit, '
    'duplicate_bank_line, composition_mismatch, payment_without_order, order_unpaid, '
    'document_missing; resolved by a reconciliation.exception.resolved event';

ALTER FUNCTION ledgerhub_views.clearing_tieout_at(date) OWNER TO ledgerhub_app;
ALTER FUNCTION ledgerhub_views.clearing_exceptions_at(date) OWNER TO ledgerhub_app;
ALTER FUNCTION ledgerhub_views.reconciliation_exceptions_at(date) OWNER TO ledgerhub_app;

CREATE VIEW ledgerhub_views.clearing_tieout AS
    SELECT * FROM ledgerhub_views.clearing_tieout_at(NULL);
COMMENT ON VIEW ledgerhub_views.clearing_tieout IS
    'per tenant, processor, clearing account, currency and day with activity: the ledger''s '
    'clearing balance at the end of the day, what the processor says is still unpaid, '
    'difference_minor = ledger - processor, status tied | pending | off';

REVOKE ALL ON FUNCTION ledgerhub_views.clearing_tieout_at(date),
                       ledgerhub_views.clearing_exceptions_at(date),
                       ledgerhub_views.reconciliation_exceptions_at(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledgerhub_views.clearing_tieout_at(date),
                          ledgerhub_views.clearing_exceptions_at(date),
                          ledgerhub_views.reconciliation_exceptions_at(date)
    TO ledgerhub_analyst, ledgerhub_app;
GRANT SELECT ON ledgerhub_views.clearing_tieout TO ledgerhub_analyst, ledgerhub_app;
