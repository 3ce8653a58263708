-- Back-channel logout notices waiting to reach a portal. A row is written in the transaction
-- that ends the session, so a notice outlives a restart; the delivery task posts it, retries
-- with growing pauses, and deletes it once delivered or given up, with its audit event.
CREATE TABLE backchannel_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    sid TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX backchannel_deliveries_due ON backchannel_deliveries (next_attempt_at);
