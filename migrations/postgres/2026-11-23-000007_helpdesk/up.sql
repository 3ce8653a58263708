-- Finding people by name at the helpdesk: the full name lower-cased by the application.
ALTER TABLE users ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE users SET name_key = lower(given_name || ' ' || family_name);

-- A contact email change started by the helpdesk, waiting for the code sent to the new
-- address. Until it is confirmed the person signs in with the old address.
CREATE TABLE email_changes (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    new_email TEXT NOT NULL,
    new_email_key TEXT NOT NULL UNIQUE,
    requested_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- The sign-in policy as an administrator last set it in the console (one row). Without it, the
-- configuration file's values hold.
CREATE TABLE sign_in_policy (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    policy TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL
);
