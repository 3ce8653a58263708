-- Name keys lose their accents ("helene emond" finds Hélène Émond). SQL cannot fold accents the
-- same way on both backends, so the keys are emptied here and computed again by the
-- application right after the migrations (store::users::fill_name_keys).
UPDATE users SET name_key = '';
-- What the application looks for at every start: the keys still empty. Only those rows are in
-- this index, so once they are filled the look costs nothing, however many people there are.
CREATE INDEX users_name_key_unfilled ON users (id) WHERE name_key = '';
