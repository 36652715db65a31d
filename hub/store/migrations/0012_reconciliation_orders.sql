-- Order-to-cash for analysts: orders and payments of the reconciliation projection in
-- ledgerhub_views, read through functions as in 0011 (the projection's views are swapped on a
-- rebuild, so nothing here may depend on them directly). Columns are those of the
-- reconciliation projection's version 2 tables.

CREATE FUNCTION ledgerhub_views.reconciliation_orders_all()
RETURNS TABLE (
    tenant text, source text, order_id text, number text, status text, currency text,
    total_minor bigint, business_date date, paid_minor bigint
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RETURN QUERY EXECUTE $q$
        SELECT o.tenant, o.source, o.order_id, o.number, o.status, o.currency, o.total_minor,
               o.business_date,
               (SELECT coalesce(sum(p.gross_minor), 0)::bigint
                FROM ledgerhub_projections."reconciliation__payments" AS p
                WHERE p.tenant = o.tenant AND p.order_ref = o.order_id
                  AND p.currency = o.currency)
        FROM ledgerhub_projections."reconciliation__orders" AS o
    $q$;
END
$fn$;

CREATE FUNCTION ledgerhub_views.reconciliation_payments_all()
RETURNS TABLE (
    tenant text, source text, payment_id text, processor text, order_ref text, currency text,
    gross_minor bigint, fee_minor bigint, business_date date, payout_id text
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RETURN QUERY EXECUTE $q$
        SELECT p.tenant, p.source, p.payment_id, p.processor, p.order_ref, p.currency,
               p.gross_minor, p.fee_minor, p.business_date, coalesce(p.payout_id, m.payout_id)
        FROM ledgerhub_projections."reconciliation__payments" AS p
        LEFT JOIN ledgerhub_projections."reconciliation__movements" AS m
               ON m.tenant = p.tenant AND m.source = p.source
              AND m.txn_id = p.balance_transaction
    $q$;
END
$fn$;

ALTER FUNCTION ledgerhub_views.reconciliation_orders_all() OWNER TO ledgerhub_app;
ALTER FUNCTION ledgerhub_views.reconciliation_payments_all() OWNER TO ledgerhub_app;

CREATE VIEW ledgerhub_views.reconciliation_orders AS
    SELECT * FROM ledgerhub_views.reconciliation_orders_all();
COMMENT ON VIEW ledgerhub_views.reconciliation_orders IS
    'orders with what the payments naming them add up to (paid_minor, in the order currency)';

CREATE VIEW ledgerhub_views.reconciliation_payments AS
    SELECT * FROM ledgerhub_views.reconciliation_payments_all();
COMMENT ON VIEW ledgerhub_views.reconciliation_payments IS
    'payments with the order they name and the payout that carried them (when known)';

REVOKE ALL ON FUNCTION ledgerhub_views.reconciliation_orders_all() FROM PUBLIC;
REVOKE ALL ON FUNCTION ledgerhub_views.reconciliation_payments_all() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledgerhub_views.reconciliation_orders_all(),
                          ledgerhub_views.reconciliation_payments_all()
    TO ledgerhub_analyst, ledgerhub_app;
GRANT SELECT ON ledgerhub_views.reconciliation_orders, ledgerhub_views.reconciliation_payments
    TO ledgerhub_analyst, ledgerhub_app;
