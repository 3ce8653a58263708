DROP TABLE sign_in_policy;
DROP TABLE email_changes;
ALTER TABLE users DROP COLUMN name_key;
