DROP TABLE user_roles;
DROP TABLE audit_checkpoints;
DROP TABLE audit_chain_head;
DROP INDEX audit_events_chain_index;
ALTER TABLE audit_events DROP COLUMN row_hash;
ALTER TABLE audit_events DROP COLUMN prev_hash;
ALTER TABLE audit_events DROP COLUMN chain_index;
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
