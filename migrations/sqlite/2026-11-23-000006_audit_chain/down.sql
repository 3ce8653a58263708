DROP TABLE user_roles;
DROP TABLE audit_checkpoints;
DROP TABLE audit_chain_head;
DROP INDEX audit_events_chain_index;
ALTER TABLE audit_events DROP COLUMN row_hash;
ALTER TABLE audit_events DROP COLUMN prev_hash;
ALTER TABLE audit_events DROP COLUMN chain_index;
