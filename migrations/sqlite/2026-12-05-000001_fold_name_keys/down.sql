DROP INDEX users_name_key_unfilled;
UPDATE users SET name_key = lower(given_name || ' ' || family_name);
