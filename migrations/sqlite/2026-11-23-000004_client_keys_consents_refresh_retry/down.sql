PRAGMA foreign_keys = OFF;
BEGIN;
ALTER TABLE refresh_tokens DROP COLUMN retry_response_enc;
DROP TABLE client_assertions;
DROP TABLE consents;
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
    CHECK (kind = 'public' OR secret_hash IS NOT NULL)
);
INSERT INTO clients_rebuilt SELECT id, name, kind, secret_hash, redirect_uris,
    post_logout_redirect_uris, backchannel_logout_uri, allowed_scopes, allowed_grants,
    id_token_alg, first_party, first_factor, required_level, enabled, created_at, updated_at
FROM clients WHERE secret_hash IS NOT NULL OR kind = 'public';
DROP TABLE clients;
ALTER TABLE clients_rebuilt RENAME TO clients;
COMMIT;
PRAGMA foreign_keys = ON;
