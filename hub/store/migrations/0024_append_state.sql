-- What an append transaction reads under the event log's lock, in the one call that takes it.
--
-- An append took the lock with one statement and read the head, its keys and its streams'
-- versions with a second: that read must begin after the lock is granted (in READ COMMITTED a
-- statement's snapshot is taken when it starts, and only one taken after the grant sees the
-- previous holder's rows). Every round trip made while the lock is held is one every other
-- appender waits for, and so is the hub's turn to resume after it; this function makes the
-- lock and the read one call. It is VOLATILE, so each statement in it takes a new snapshot: the
-- query runs after pg_advisory_xact_lock has returned and sees every append committed before.
--
-- Its query is EXECUTEd, so it is planned each time with the values of this call: a session
-- caches a generic plan for a prepared statement after five runs, and one made while the
-- statistics described a handful of rows scanned the whole log for every key of every later
-- group until autovacuum analyzed it again (measured: 500-event batches into a log analyzed at
-- two events, 607 events/s). Sequential scans are refused while it runs besides, as no estimate
-- makes one right here: every read is an index probe at any size of the log.
--
-- Each key, and each stream's last version, is found by one probe of its own unique index
-- (events_idempotency, events_stream_version), at any size of the log and whatever its
-- statistics say. Once they were gathered from 10,000 events or more (pg_class.reltuples),
-- equality on the index's columns in a lateral subquery kept from being flattened into a join
-- (OFFSET 0) is planned so. Statistics of a few events, or none, mislead the planner: a log
-- analyzed at one event (every column then looks unique) or while empty had equality planned
-- as a probe of events_tenant_position filtering every event of the tenant, per key (measured:
-- 500-event batches from 8 clients at about 250-330 events/s until autovacuum analyzed the log
-- again); a plain join of unnest with the log, on a table never analyzed, as a hash join over a
-- scan of the whole log; equality with LIMIT 1, with statistics of a nearly empty log, as a
-- probe of events_tenant_position. Until then the subquery asks instead for the first row at or
-- after the key in the unique index's order (a row comparison over all its columns, ORDER BY
-- them, LIMIT 1; for a stream, the last row at or before (tenant, stream, the largest
-- version)), which no other index can answer without reading on, and the outer condition keeps
-- the row only if it is that key (that stream). That form visits the row next to each new key,
-- so it costs more (7.1 against 4.8 ms for 500 new keys in a log of 24,000 events): it is kept
-- for the small log whose statistics cannot be trusted.

-- One row each: the head ('h': the time to record, the last position and hash), a key of the
-- group already logged ('k': its position and stream version), a stream's current version ('v').

CREATE FUNCTION ledgerhub.append_state(
    lock_key bigint,
    tenants text[],
    sources text[],
    external_ids text[],
    stream_tenants text[],
    streams text[]
)
RETURNS TABLE (
    kind text,
    now timestamptz,
    "position" bigint,
    hash bytea,
    tenant text,
    source text,
    name text,
    version integer
)
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
AS $fn$
DECLARE
    head CONSTANT text := $head$
        SELECT 'h'::text, clock_timestamp(), h.position, h.hash,
               NULL::text, NULL::text, NULL::text, NULL::integer
          FROM (SELECT) AS one
          LEFT JOIN LATERAL (SELECT e.position, e.hash FROM ledgerhub.events AS e
                             ORDER BY e.position DESC LIMIT 1) AS h ON true
        UNION ALL
    $head$;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    IF (SELECT c.reltuples FROM pg_catalog.pg_class AS c
         WHERE c.oid = 'ledgerhub.events'::regclass) >= 10000 THEN
        RETURN QUERY EXECUTE head || $trusted$
        SELECT 'k', NULL, e.position, NULL, k.tenant, k.source, k.external_id, e.stream_version
          FROM unnest($1::text[], $2::text[], $3::text[]) AS k(tenant, source, external_id)
          CROSS JOIN LATERAL (SELECT x.position, x.stream_version FROM ledgerhub.events AS x
                               WHERE x.tenant = k.tenant AND x.source = k.source
                                 AND x.external_id = k.external_id OFFSET 0) AS e
        UNION ALL
        SELECT 'v', NULL, NULL, NULL, s.tenant, NULL, s.stream,
               (SELECT max(x.stream_version) FROM ledgerhub.events AS x
                 WHERE x.tenant = s.tenant AND x.stream = s.stream)
          FROM unnest($4::text[], $5::text[]) AS s(tenant, stream)
        $trusted$ USING tenants, sources, external_ids, stream_tenants, streams;
    ELSE
        RETURN QUERY EXECUTE head || $untrusted$
        SELECT 'k', NULL, e.position, NULL, k.tenant, k.source, k.external_id, e.stream_version
          FROM unnest($1::text[], $2::text[], $3::text[]) AS k(tenant, source, external_id)
          CROSS JOIN LATERAL (SELECT x.tenant, x.source, x.external_id, x.position,
                                     x.stream_version
                                FROM ledgerhub.events AS x
                               WHERE (x.tenant, x.source, x.external_id)
                                     >= (k.tenant, k.source, k.external_id)
                               ORDER BY x.tenant, x.source, x.external_id
                               LIMIT 1) AS e
         WHERE (e.tenant, e.source, e.external_id) = (k.tenant, k.source, k.external_id)
        UNION ALL
        SELECT 'v', NULL, NULL, NULL, s.tenant, NULL, s.stream, v.stream_version
          FROM unnest($4::text[], $5::text[]) AS s(tenant, stream)
          LEFT JOIN LATERAL (SELECT x.tenant, x.stream, x.stream_version
                               FROM ledgerhub.events AS x
                              WHERE (x.tenant, x.stream, x.stream_version)
                                    <= (s.tenant, s.stream, 2147483647)
                              ORDER BY x.tenant DESC, x.stream DESC, x.stream_version DESC
                              LIMIT 1) AS v
                 ON (v.tenant, v.stream) = (s.tenant, s.stream)
        $untrusted$ USING tenants, sources, external_ids, stream_tenants, streams;
    END IF;
END
$fn$;

REVOKE ALL ON FUNCTION ledgerhub.append_state(bigint, text[], text[], text[], text[], text[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledgerhub.append_state(bigint, text[], text[], text[], text[], text[])
    TO ledgerhub_app;
