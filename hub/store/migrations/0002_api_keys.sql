-- API keys. See DESIGN.md, "Ingestion" (Keys). Only the SHA-256 of a key is stored.

CREATE TABLE ledgerhub.api_keys (
    id         uuid        PRIMARY KEY,
    tenant     text        NOT NULL CHECK (tenant <> ''),
    scope      text        NOT NULL CHECK (scope ~ '^(ingest:.+|read|operate)$'),
    prefix     text        NOT NULL,
    key_hash   bytea       NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    label      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    -- only an `operate` key may be issued for every tenant ('*')
    CONSTRAINT api_keys_all_tenants_operate CHECK (tenant <> '*' OR scope = 'operate')
);

COMMENT ON TABLE ledgerhub.api_keys IS
    'API keys: SHA-256 of each key, its tenant and scope; expired or revoked keys stay for audit.';

REVOKE ALL ON ledgerhub.api_keys FROM PUBLIC;
-- The hub looks keys up, creates them and revokes them; it never deletes one or changes its scope.
GRANT SELECT, INSERT ON ledgerhub.api_keys TO ledgerhub_app;
GRANT UPDATE (revoked_at) ON ledgerhub.api_keys TO ledgerhub_app;
