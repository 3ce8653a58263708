-- A person's refresh tokens, found without reading the whole table: a password reset revokes
-- them all, and a logout those of one of their sessions, inside a write transaction.
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
