DROP TABLE email_changes;
ALTER TABLE users DROP COLUMN name_key;
