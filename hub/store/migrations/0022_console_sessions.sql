-- Web console sessions (DESIGN "Console"). A session is created when someone signs in with a
-- read or operate key and holds that key's id, never the key: every request re-checks the key
-- (revoked, expired, rotated out) through the join. Only the SHA-256 of the session token (the
-- cookie) is stored, so a copy of this table opens no session. csrf is the session's
-- synchronizer token, sent back in a hidden field of every form.

CREATE TABLE ledgerhub.console_sessions (
    token_hash  bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    key_id      uuid        NOT NULL REFERENCES ledgerhub.api_keys (id),
    csrf        text        NOT NULL CHECK (length(csrf) >= 32),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX console_sessions_expires ON ledgerhub.console_sessions (expires_at);

COMMENT ON TABLE ledgerhub.console_sessions IS
    'web console sessions: SHA-256 of the cookie, the key signed in with, the CSRF token';

REVOKE ALL ON ledgerhub.console_sessions FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON ledgerhub.console_sessions TO ledgerhub_app;
