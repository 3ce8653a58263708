-- Name keys put the family name first, so that the database can order the people a search
-- finds as they are listed (family name, then given name, accents aside) and pick the first
-- of them rather than any. The keys are emptied here and computed again by the application
-- right after the migrations (store::users::fill_name_keys), as for their accent-free form.
UPDATE users SET name_key = '';
