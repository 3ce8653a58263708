UPDATE users SET name_key = lower(given_name || ' ' || family_name);
