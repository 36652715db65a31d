-- The append-only event log. See DESIGN.md, "The event log".

DO $$
BEGIN
    CREATE ROLE ledgerhub_app NOLOGIN;
EXCEPTION
    -- another database on this server (or a concurrent migrate) created it first
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The migrating user must be able to SET ROLE ledgerhub_app (the hub's pools do).
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'ledgerhub_app', 'MEMBER') THEN
        EXECUTE format('GRANT ledgerhub_app TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA ledgerhub TO ledgerhub_app;
GRANT SELECT ON ledgerhub.schema_migrations TO ledgerhub_app;

CREATE TABLE ledgerhub.events (
    position       bigint      PRIMARY KEY CHECK (position > 0),
    id             uuid        NOT NULL UNIQUE,
    tenant         text        NOT NULL,
    source         text        NOT NULL,
    external_id    text        NOT NULL,
    type           text        NOT NULL,
    stream         text        NOT NULL,
    stream_version integer     NOT NULL CHECK (stream_version > 0),
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL,
    data           jsonb       NOT NULL,
    meta           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    raw            bytea,
    hash           bytea       NOT NULL CHECK (octet_length(hash) = 32),
    CONSTRAINT events_idempotency UNIQUE (tenant, source, external_id),
    CONSTRAINT events_stream_version UNIQUE (tenant, stream, stream_version)
);

CREATE INDEX events_tenant_position ON ledgerhub.events (tenant, position);

COMMENT ON TABLE ledgerhub.events IS
    'Append-only event log: positions 1..N gap-free in commit order, SHA-256 hash chain.';

CREATE FUNCTION ledgerhub.refuse_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledgerhub.events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'append a correcting event instead';
END
$$;

CREATE TRIGGER events_no_update_delete
    BEFORE UPDATE OR DELETE ON ledgerhub.events
    FOR EACH ROW EXECUTE FUNCTION ledgerhub.refuse_event_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON ledgerhub.events
    FOR EACH STATEMENT EXECUTE FUNCTION ledgerhub.refuse_event_change();

REVOKE ALL ON ledgerhub.events FROM PUBLIC;
GRANT SELECT, INSERT ON ledgerhub.events TO ledgerhub_app;
