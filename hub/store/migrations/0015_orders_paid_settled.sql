-- reconciliation_orders.paid_minor counts a payment charged in another currency at what it
-- settled in the order's currency (reconciliation projection version 7 stores settled_currency
-- and settled_minor), as the order's amount_mismatch check already does. Until a generation
-- with those columns is active (the rebuild after an upgrade), it counts as before: payments in
-- the order's currency only.

CREATE OR REPLACE FUNCTION ledgerhub_views.reconciliation_orders_all()
RETURNS TABLE (
    tenant text, source text, order_id text, number text, status text, currency text,
    total_minor bigint, business_date date, paid_minor bigint
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    settled boolean := EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = to_regclass('ledgerhub_projections."reconciliation__payments"')
          AND attname = 'settled_minor' AND NOT attisdropped
    );
BEGIN
    IF NOT settled THEN
        RETURN QUERY EXECUTE $q$
            SELECT o.tenant, o.source, o.order_id, o.number, o.status, o.currency,
                   o.total_minor, o.business_date,
                   (SELECT coalesce(sum(p.gross_minor), 0)::bigint
                    FROM ledgerhub_projections."reconciliation__payments" AS p
                    WHERE p.tenant = o.tenant AND p.order_ref = o.order_id
                      AND p.currency = o.currency)
            FROM ledgerhub_projections."reconciliation__orders" AS o
        $q$;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        SELECT o.tenant, o.source, o.order_id, o.number, o.status, o.currency, o.total_minor,
               o.business_date,
               (SELECT coalesce(sum(CASE WHEN p.currency = o.currency THEN p.gross_minor
                                         ELSE p.settled_minor END), 0)::bigint
                FROM ledgerhub_projections."reconciliation__payments" AS p
                WHERE p.tenant = o.tenant AND p.order_ref = o.order_id
                  AND (p.currency = o.currency OR p.settled_currency = o.currency))
        FROM ledgerhub_projections."reconciliation__orders" AS o
    $q$;
END
$fn$;

COMMENT ON VIEW ledgerhub_views.reconciliation_orders IS
    'orders with what the payments naming them add up to (paid_minor, in the order currency; '
    'a payment charged in another currency at what it settled in the order currency)';
