-- A call the sender is making to a target, before its outcome is recorded.
--
-- The sender records what a target holds (sync_documents) after the call that made it. A
-- process that dies between the two leaves the target holding a copy the sender does not know
-- of; repeating the call under the same idempotency key finds it, as long as the repeat is the
-- same call. When the document changed in between, today's call is not that call: a target
-- that replays its first answer to a key returns the old content as if it were the new, and a
-- re-created copy (void, then create under a new key) is made a second time beside the first.
-- So the sender writes the document here before its call (before the flush, at a target that
-- batches) and deletes it with the outcome; the next run finds it here and makes that call
-- again, exactly, before it sends today's content. The first unrecorded call is the one kept.
CREATE TABLE ledgerhub.sync_pending (
    tenant   text        NOT NULL,
    target   text        NOT NULL,
    doc_key  text        NOT NULL,
    document jsonb       NOT NULL,
    since    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, target, doc_key)
);

GRANT SELECT, INSERT, DELETE ON ledgerhub.sync_pending TO ledgerhub_app;
