-- Keep in step with ../../postgres/2026-11-23-000004_client_keys_consents_refresh_retry/up.sql.
-- Clients may authenticate with a key (private_key_jwt) instead of a secret; consents are
-- remembered; a rotated refresh token can carry the answer a retrying client gets back.

PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE clients_rebuilt (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('confidential', 'public')),
    secret_hash BLOB,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    backchannel_logout_uri TEXT,
    allowed_scopes TEXT NOT NULL,
    allowed_grants TEXT NOT NULL,
    id_token_alg TEXT NOT NULL DEFAULT 'RS256',
    first_party BOOLEAN NOT NULL DEFAULT 0,
    first_factor TEXT NOT NULL DEFAULT 'password',
    required_level TEXT NOT NULL DEFAULT 'mfa',
    enabled BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    -- Public JWK Set for private_key_jwt client authentication.
    jwks TEXT,
    CHECK (kind = 'public' OR secret_hash IS NOT NULL OR jwks IS NOT NULL)
);
INSERT INTO clients_rebuilt (id, name, kind, secret_hash, redirect_uris, post_logout_redirect_uris,
    backchannel_logout_uri, allowed_scopes, allowed_grants, id_token_alg, first_party,
    first_factor, required_level, enabled, created_at, updated_at)
SELECT id, name, kind, secret_hash, redirect_uris, post_logout_redirect_uris,
    backchannel_logout_uri, allowed_scopes, allowed_grants, id_token_alg, first_party,
    first_factor, required_level, enabled, created_at, updated_at
FROM clients;
DROP TABLE clients;
ALTER TABLE clients_rebuilt RENAME TO clients;

-- What a person agreed to share with a portal that is not first-party.
CREATE TABLE consents (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    granted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Client assertion identifiers already seen (each assertion is usable once).
CREATE TABLE client_assertions (
    jti_hash BLOB PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX client_assertions_expires_at ON client_assertions (expires_at);

-- Sealed copy of the answer that rotated this token, kept for the grace window only.
ALTER TABLE refresh_tokens ADD COLUMN retry_response_enc BLOB;

COMMIT;
PRAGMA foreign_key_check;
PRAGMA foreign_keys = ON;
