ALTER TABLE refresh_tokens DROP COLUMN retry_response_enc;
DROP TABLE client_assertions;
DROP TABLE consents;
DELETE FROM clients WHERE kind = 'confidential' AND secret_hash IS NULL;
ALTER TABLE clients DROP CONSTRAINT clients_credential_check;
ALTER TABLE clients ADD CONSTRAINT clients_check CHECK (kind = 'public' OR secret_hash IS NOT NULL);
ALTER TABLE clients DROP COLUMN jwks;
