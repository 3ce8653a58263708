-- The portals an SSO session signed in to: logging out notifies each of them.
CREATE TABLE session_clients (
    sid TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (sid, client_id)
);
