-- Usage anomalies (issue 17): the client networks each key has been used from (/24 for IPv4,
-- /64 for IPv6), so that a key used from a network it has never been seen from, once it has a
-- history, raises an alert (hub.api.anomalies). Written with the use counts, in batches.

ALTER TABLE ledgerhub.api_keys
    ADD COLUMN seen_networks cidr[] NOT NULL DEFAULT '{}';

COMMENT ON COLUMN ledgerhub.api_keys.seen_networks IS
    'client networks (/24, /64) the key has been used from, flushed with use_count';

GRANT UPDATE (seen_networks) ON ledgerhub.api_keys TO ledgerhub_app;
