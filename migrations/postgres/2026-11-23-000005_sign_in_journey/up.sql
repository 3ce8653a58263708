-- Sign-in journey (PostgreSQL). Keep in step with ../../sqlite/2026-11-23-000005_sign_in_journey/up.sql.

-- Failure counters and locks, keyed by a keyed hash of what they protect: an account's login
-- name (whether or not such an account exists, so a lock says nothing about registration) or
-- a client IP address.
CREATE TABLE attempt_counters (
    key TEXT PRIMARY KEY NOT NULL,
    password_failures INTEGER NOT NULL DEFAULT 0,
    second_factor_failures INTEGER NOT NULL DEFAULT 0,
    window_started_at TIMESTAMP NOT NULL,
    lock_count INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX attempt_counters_updated_at ON attempt_counters (updated_at);

-- Where a person is in the journey beyond its step: the email typed for a reset, a pending
-- authenticator secret (sealed), the language chosen.
ALTER TABLE login_transactions ADD COLUMN data TEXT NOT NULL DEFAULT '{}';

-- Lock state moved to attempt_counters.
ALTER TABLE users DROP COLUMN password_failures;
ALTER TABLE users DROP COLUMN mfa_failures;
ALTER TABLE users DROP COLUMN lock_count;
ALTER TABLE users DROP COLUMN locked_until;
