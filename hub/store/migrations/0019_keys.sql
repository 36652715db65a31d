-- API keys, second wave (DESIGN "Contract details, second wave": Keys). A key holds several
-- scopes, may be restricted to client networks and given a rate limit of its own, is rotated
-- (the old key points at its successor and expires after the overlap), and records its use.
--
-- Each existing key keeps its one scope, now the only element of `scopes`: no key is lost.

CREATE FUNCTION ledgerhub.valid_key_scopes(scopes text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN cardinality(scopes) >= 1
    AND array_position(scopes, NULL) IS NULL
    AND coalesce((SELECT bool_and(s ~ '^(ingest:.+|read|operate)$') FROM unnest(scopes) AS s), false);

ALTER TABLE ledgerhub.api_keys
    ADD COLUMN scopes       text[],
    ADD COLUMN allow_ips    cidr[]      NOT NULL DEFAULT '{}',
    ADD COLUMN rate_count   integer     CHECK (rate_count > 0),
    ADD COLUMN rate_seconds integer     CHECK (rate_seconds > 0),
    ADD COLUMN replaced_by  uuid        REFERENCES ledgerhub.api_keys (id),
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN use_count    bigint      NOT NULL DEFAULT 0 CHECK (use_count >= 0),
    ADD CONSTRAINT api_keys_rate_whole CHECK ((rate_count IS NULL) = (rate_seconds IS NULL));

UPDATE ledgerhub.api_keys SET scopes = ARRAY[scope];

ALTER TABLE ledgerhub.api_keys
    ALTER COLUMN scopes SET NOT NULL,
    ADD CONSTRAINT api_keys_scopes_valid CHECK (ledgerhub.valid_key_scopes(scopes)),
    DROP CONSTRAINT api_keys_all_tenants_operate,
    -- only an `operate` key may be issued for every tenant ('*')
    ADD CONSTRAINT api_keys_all_tenants_operate CHECK (tenant <> '*' OR scopes = ARRAY['operate']),
    DROP COLUMN scope;

COMMENT ON COLUMN ledgerhub.api_keys.scopes IS 'every scope the key holds (ingest:<source>, read, operate)';
COMMENT ON COLUMN ledgerhub.api_keys.allow_ips IS 'client networks the key may be used from (empty: any)';
COMMENT ON COLUMN ledgerhub.api_keys.replaced_by IS 'the key that rotated this one out (it expires after the overlap)';
COMMENT ON COLUMN ledgerhub.api_keys.use_count IS 'requests made with the key, flushed from the serving processes in batches';

-- The hub revokes keys, rotates them (an end to the old key's validity and its successor) and
-- records their use; it still never deletes a key or changes its scopes.
GRANT UPDATE (expires_at, replaced_by, last_used_at, use_count) ON ledgerhub.api_keys TO ledgerhub_app;
GRANT EXECUTE ON FUNCTION ledgerhub.valid_key_scopes(text[]) TO ledgerhub_app;
