-- The projection runtime's own tables. See DESIGN.md, "Projections", and hub/store/projections.py.

-- One row per projection the workers know of.
CREATE TABLE ledgerhub.projections (
    name              text        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    active_generation integer     NOT NULL DEFAULT 1,
    side_effects      boolean     NOT NULL DEFAULT false,
    last_error        text,
    last_error_at     timestamptz,
    registered_at     timestamptz NOT NULL DEFAULT now()
);

-- A generation is one set of read-model tables with its checkpoint. Queries read the active one
-- through views; a rebuild fills a `building` one and swaps it in (blue/green).
CREATE TABLE ledgerhub.projection_generations (
    projection text        NOT NULL REFERENCES ledgerhub.projections (name),
    generation integer     NOT NULL CHECK (generation > 0),
    version    integer     NOT NULL,
    position   bigint      NOT NULL DEFAULT 0 CHECK (position >= 0),
    tables     jsonb       NOT NULL,
    state      text        NOT NULL CHECK (state IN ('building', 'active', 'retired')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, generation)
);

-- Who runs a projection. `token` grows on every change of hands and fences the checkpoint commit.
CREATE TABLE ledgerhub.projection_leases (
    projection  text        PRIMARY KEY REFERENCES ledgerhub.projections (name),
    holder      text        NOT NULL,
    token       bigint      NOT NULL,
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Live worker processes, so that leases can be spread evenly.
CREATE TABLE ledgerhub.projection_workers (
    holder     text        PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledgerhub.parked_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection  text        NOT NULL REFERENCES ledgerhub.projections (name),
    generation  integer     NOT NULL,
    position    bigint      NOT NULL,
    event_type  text        NOT NULL,
    error_type  text        NOT NULL,
    message     text        NOT NULL,
    traceback   text        NOT NULL,
    attempts    integer     NOT NULL CHECK (attempts > 0),
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    status      text        NOT NULL
        CHECK (status IN ('parked', 'retry', 'resolved', 'skipped', 'superseded')),
    resolved_at timestamptz,
    UNIQUE (projection, generation, position)
);

CREATE INDEX parked_events_open ON ledgerhub.parked_events (projection, status);

CREATE TABLE ledgerhub.projection_jobs (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection    text        NOT NULL REFERENCES ledgerhub.projections (name),
    kind          text        NOT NULL CHECK (kind IN ('replay', 'rebuild')),
    from_position bigint,
    to_position   bigint,
    send          boolean     NOT NULL DEFAULT false,
    state         text        NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'done', 'failed')),
    cursor        bigint      NOT NULL DEFAULT 0,
    done          bigint      NOT NULL DEFAULT 0,
    total         bigint      NOT NULL DEFAULT 0,
    generation    integer,
    error         text,
    holder        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz
);

CREATE INDEX projection_jobs_open ON ledgerhub.projection_jobs (projection, state);

GRANT SELECT, INSERT, UPDATE ON
    ledgerhub.projections,
    ledgerhub.projection_generations,
    ledgerhub.projection_leases,
    ledgerhub.parked_events,
    ledgerhub.projection_jobs
TO ledgerhub_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ledgerhub.projection_workers TO ledgerhub_app;

-- Read models: the hub's role creates (and so owns) each generation's tables here, and the
-- stable views over the active generation that queries use.
CREATE SCHEMA ledgerhub_projections;
GRANT USAGE, CREATE ON SCHEMA ledgerhub_projections TO ledgerhub_app;
