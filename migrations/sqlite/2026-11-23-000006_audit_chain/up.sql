-- Tamper evidence: each audit row carries its position in one linear chain, the hash of the
-- row before it, and its own hash (SHA-256 over a canonical encoding, computed by the
-- application). Rows written before this migration stay unchained (chain_index NULL).
ALTER TABLE audit_events ADD COLUMN chain_index BIGINT;
ALTER TABLE audit_events ADD COLUMN prev_hash BLOB;
ALTER TABLE audit_events ADD COLUMN row_hash BLOB;
CREATE UNIQUE INDEX audit_events_chain_index ON audit_events (chain_index);

-- The end of the chain. Every append locks this one row, so appends from every instance form
-- a single chain with no fork and no gap.
CREATE TABLE audit_chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_index BIGINT NOT NULL,
    last_hash BLOB NOT NULL
);
INSERT INTO audit_chain_head (id, last_index, last_hash) VALUES (1, 0, X'');

-- Signed checkpoints: the chain's head at a moment, signed with a published signing key.
CREATE TABLE audit_checkpoints (
    chain_index BIGINT PRIMARY KEY,
    row_hash BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    signature TEXT NOT NULL
);

-- Staff roles. A person holds any number of them; the consoles check them on every request.
CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('auditor', 'helpdesk', 'admin')),
    granted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, role)
);
