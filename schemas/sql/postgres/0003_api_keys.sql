-- 0003_api_keys.sql - API keys for sy-gateway's REST API (workers/gateway/auth.h).
-- A key reads "sy_<id>_<secret>": id is 12 lower-case hex characters, public and the primary
-- key here; secret is 32 random bytes in unpadded base64url. Only the SHA-256 of the secret's
-- text is kept (key_hash, 32 bytes): the key itself is shown once by `syctl apikey create` and
-- can never be read back. A revoked key keeps its row (revoked_at set) so its history survives.
CREATE TABLE sy_api_keys (
    id           text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{12}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role         text NOT NULL CHECK (role IN ('chatbot', 'agent', 'admin', 'readonly')),
    key_hash     bytea NOT NULL CHECK (length(key_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
