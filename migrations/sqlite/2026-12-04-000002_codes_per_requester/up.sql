-- An emailed code belongs to the sign-in that asked for it (the login transaction, by the hash
-- its cookie refers to) and counts against the address that asked (a keyed hash, never the
-- address itself). A stranger who types someone's email into the reset form neither kills the
-- code that person is waiting for nor spends the sends they are allowed. Codes issued by staff
-- (email changes) have neither.
ALTER TABLE one_time_codes ADD COLUMN requested_in TEXT;
ALTER TABLE one_time_codes ADD COLUMN requested_from TEXT;
