-- Projections partitioned by tenant (issue 12). See hub/store/projections.py, "Partitions".
--
-- A projection may run as K partitions: partition p of K applies the events whose tenant hashes
-- into the p-th of K equal ranges of ledgerhub.tenant_hash (below), in position order, with its
-- own checkpoint and its own lease. K = 1 (every projection until now) is partition 0 of 1: the
-- rows that exist keep their meaning, with partition 0 filled in.

-- The tenant's hash: the first 32 bits of the MD5 of its name, 0 .. 2^32 - 1. Stable across
-- processes, PostgreSQL versions and platforms (unlike hashtext), and computed the same in
-- Python (hub.store.projections.tenant_hash). A plain SQL expression, inlined by the planner.
CREATE FUNCTION ledgerhub.tenant_hash(tenant text) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ('x' || left(md5(tenant), 8))::bit(32)::bigint;

-- The partition of K that a tenant belongs to.
CREATE FUNCTION ledgerhub.tenant_partition(tenant text, partitions integer) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN (ledgerhub.tenant_hash(tenant) * partitions >> 32)::integer;

-- Checkpoints: one row per (generation, partition); `partitions` is the generation's K (the same
-- on each of its rows). Changing K means building a new generation (a rebuild).
ALTER TABLE ledgerhub.projection_generations
    ADD COLUMN partition  integer NOT NULL DEFAULT 0,
    ADD COLUMN partitions integer NOT NULL DEFAULT 1,
    ADD CONSTRAINT projection_generations_partition
        CHECK (partitions BETWEEN 1 AND 256 AND partition >= 0 AND partition < partitions),
    DROP CONSTRAINT projection_generations_pkey,
    ADD PRIMARY KEY (projection, generation, partition);
-- A generation created again with fewer partitions (a rebuild retried after K changed) drops
-- the checkpoints of the partitions it no longer has.
GRANT DELETE ON ledgerhub.projection_generations TO ledgerhub_app;

-- Leases: one per (projection, partition). `last_error` is what that partition's runner is
-- backing off from (the projections row keeps the one of partition 0, as before).
ALTER TABLE ledgerhub.projection_leases
    ADD COLUMN partition     integer NOT NULL DEFAULT 0 CHECK (partition >= 0),
    ADD COLUMN last_error    text,
    ADD COLUMN last_error_at timestamptz,
    DROP CONSTRAINT projection_leases_pkey,
    ADD PRIMARY KEY (projection, partition);

-- What each live worker runs, as 'name=K' (the projection and its number of partitions), so
-- that a projection's partitions are spread over the workers that run it, and workers that
-- disagree on K can tell (hub/runtime/worker.py).
ALTER TABLE ledgerhub.projection_workers ADD COLUMN projections text[];

-- A parked event keeps the partition that parked it (its tenant's, in its generation).
ALTER TABLE ledgerhub.parked_events ADD COLUMN partition integer NOT NULL DEFAULT 0;

-- Jobs: the K they run over, and, for a replay, how far each partition got.
ALTER TABLE ledgerhub.projection_jobs
    ADD COLUMN partitions integer NOT NULL DEFAULT 1 CHECK (partitions >= 1),
    ADD COLUMN partition  integer CHECK (partition >= 0);
COMMENT ON COLUMN ledgerhub.projection_jobs.partition IS
    'a replay of this partition only (NULL: of every partition)';

CREATE TABLE ledgerhub.projection_job_partitions (
    job       bigint  NOT NULL REFERENCES ledgerhub.projection_jobs (id),
    partition integer NOT NULL CHECK (partition >= 0),
    cursor    bigint  NOT NULL,
    finished  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (job, partition)
);
GRANT SELECT, INSERT, UPDATE ON ledgerhub.projection_job_partitions TO ledgerhub_app;

-- At most one open rebuild per projection, even when K runners ask for one at once.
UPDATE ledgerhub.projection_jobs AS j SET state = 'failed', finished_at = now(),
       error = 'superseded by an older open rebuild (migration 0018)'
 WHERE kind = 'rebuild' AND state IN ('queued', 'running')
   AND id > (SELECT min(id) FROM ledgerhub.projection_jobs AS o
              WHERE o.projection = j.projection AND o.kind = 'rebuild'
                AND o.state IN ('queued', 'running'));
CREATE UNIQUE INDEX projection_jobs_one_rebuild ON ledgerhub.projection_jobs (projection)
    WHERE kind = 'rebuild' AND state IN ('queued', 'running');
