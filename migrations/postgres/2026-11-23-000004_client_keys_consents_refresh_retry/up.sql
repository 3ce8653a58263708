-- Keep in step with ../../sqlite/2026-11-23-000004_client_keys_consents_refresh_retry/up.sql.

-- Public JWK Set for private_key_jwt client authentication.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients DROP CONSTRAINT clients_check;
ALTER TABLE clients ADD CONSTRAINT clients_credential_check
    CHECK (kind = 'public' OR secret_hash IS NOT NULL OR jwks IS NOT NULL);

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
    jti_hash BYTEA PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX client_assertions_expires_at ON client_assertions (expires_at);

-- Sealed copy of the answer that rotated this token, kept for the grace window only.
ALTER TABLE refresh_tokens ADD COLUMN retry_response_enc BYTEA;
