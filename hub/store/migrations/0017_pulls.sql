-- Pulls: each connection's cursor per pulled stream, and the runs log.
--
-- pull_cursors holds a stream's state (a connector's own JSON: a time window, a page cursor,
-- Plaid's next_cursor). It is written in the same transaction as the events of the page that
-- advanced it (hub.store.pulls), so a pull that dies resumes from the last committed page.
-- pull_schedule records when each connection was last pulled, so that workers sharing the
-- schedule pull a connection once per period.
--
-- runs is the log of every pull, import and sync run (DESIGN "Runs"): records = what the run
-- added (events appended, not duplicates; documents written), errors = failed calls,
-- api_calls = calls made to the spoke or target.

CREATE TABLE ledgerhub.pull_cursors (
    connection  text        NOT NULL,
    stream      text        NOT NULL,
    tenant      text        NOT NULL,
    state       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (connection, stream)
);

CREATE TABLE ledgerhub.pull_schedule (
    connection  text        PRIMARY KEY,
    tenant      text        NOT NULL,
    pulled_at   timestamptz NOT NULL,
    status      text        NOT NULL CHECK (status IN ('succeeded', 'failed'))
);

CREATE TABLE ledgerhub.runs (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('pull', 'import', 'sync')),
    tenant      text        NOT NULL,
    connection  text,
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at    timestamptz,
    status      text        NOT NULL DEFAULT 'running'
                            CHECK (status IN ('running', 'succeeded', 'failed')),
    records     integer     NOT NULL DEFAULT 0,
    errors      integer     NOT NULL DEFAULT 0,
    api_calls   integer     NOT NULL DEFAULT 0,
    error       text
);

CREATE INDEX runs_kind_id ON ledgerhub.runs (kind, id DESC);
CREATE INDEX runs_connection_id ON ledgerhub.runs (connection, id DESC);

GRANT SELECT, INSERT, UPDATE ON ledgerhub.pull_cursors TO ledgerhub_app;
GRANT SELECT, INSERT, UPDATE ON ledgerhub.pull_schedule TO ledgerhub_app;
GRANT SELECT, INSERT, UPDATE ON ledgerhub.runs TO ledgerhub_app;
GRANT USAGE ON SEQUENCE ledgerhub.runs_id_seq TO ledgerhub_app;
