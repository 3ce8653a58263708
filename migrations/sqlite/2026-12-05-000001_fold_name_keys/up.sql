-- Name keys lose their accents ("helene emond" finds Hélène Émond). SQL cannot fold accents the
-- same way on both backends, so the keys are emptied here and computed again by the
-- application right after the migrations (store::users::fill_name_keys).
UPDATE users SET name_key = '';
