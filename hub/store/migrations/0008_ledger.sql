-- The ledger projection's balance rule, enforced by the database.
--
-- A journal entry row holds its postings as parallel arrays (currencies[i], amounts[i]: debit
-- positive, credit negative). Its table (created per generation by the projection runtime)
-- carries CHECK (ledgerhub.postings_balanced(currencies, amounts)), so no row whose postings do
-- not sum to zero in every currency can ever be written, whatever code writes it.

CREATE FUNCTION ledgerhub.postings_balanced(currencies text[], amounts bigint[])
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT cardinality(currencies) = cardinality(amounts)
       AND NOT EXISTS (
           SELECT 1 FROM unnest(currencies, amounts) AS p(currency, amount)
           GROUP BY p.currency HAVING sum(p.amount) <> 0
       )
       AND NOT EXISTS (SELECT 1 FROM unnest(amounts) AS a(amount) WHERE a.amount = 0
                       OR a.amount IS NULL)
$$;

COMMENT ON FUNCTION ledgerhub.postings_balanced(text[], bigint[]) IS
    'true when postings (parallel arrays) sum to zero per currency and none is zero';

GRANT EXECUTE ON FUNCTION ledgerhub.postings_balanced(text[], bigint[]) TO ledgerhub_app;
