-- Accounting sync: what each target holds, each sync run, and each call made to a target.
--
-- sync_documents is the sender's memory of what it confirmed at a target (document key ->
-- content hash and the target's id), so a rebuild of the accounting projection sends only what
-- is new or changed. The outcomes themselves are events in the log
-- (accounting.document.synced / accounting.document.failed).

CREATE TABLE ledgerhub.sync_documents (
    tenant          text        NOT NULL,
    target          text        NOT NULL,
    doc_key         text        NOT NULL,
    idempotency_key text        NOT NULL,
    content_hash    text        NOT NULL,
    target_id       text,
    status          text        NOT NULL CHECK (status IN ('synced', 'parked', 'voided')),
    message         text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, target, doc_key)
);

CREATE TABLE ledgerhub.sync_runs (
    id          bigserial   PRIMARY KEY,
    tenant      text        NOT NULL,
    target      text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    sent        integer     NOT NULL DEFAULT 0,
    failed      integer     NOT NULL DEFAULT 0,
    parked      integer     NOT NULL DEFAULT 0,
    retries     integer     NOT NULL DEFAULT 0,
    error       text
);

CREATE TABLE ledgerhub.sync_calls (
    id          bigserial   PRIMARY KEY,
    run_id      bigint      NOT NULL REFERENCES ledgerhub.sync_runs (id),
    doc_key     text        NOT NULL,
    operation   text        NOT NULL,
    request_id  text        NOT NULL,
    status      text        NOT NULL,
    duration_ms integer     NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sync_calls_run ON ledgerhub.sync_calls (run_id);

GRANT SELECT, INSERT, UPDATE ON ledgerhub.sync_documents TO ledgerhub_app;
GRANT SELECT, INSERT, UPDATE ON ledgerhub.sync_runs TO ledgerhub_app;
GRANT SELECT, INSERT ON ledgerhub.sync_calls TO ledgerhub_app;
GRANT USAGE ON SEQUENCE ledgerhub.sync_runs_id_seq, ledgerhub.sync_calls_id_seq TO ledgerhub_app;
